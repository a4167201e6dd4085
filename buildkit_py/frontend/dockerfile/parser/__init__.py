"""Parse-level Dockerfile model, like BuildKit's ``frontend/dockerfile/parser``.

``parse_dockerfile`` turns bytes into a list of :class:`Node` (one per instruction, with
flags, BuildKit-shaped arguments, heredoc bodies and line numbers); ``dump_ast`` prints the
S-expression dump used by BuildKit's parser tests.
"""

from buildkit_py.frontend.dockerfile.parser.directives import (
    CheckConfig,
    CheckOptionError,
    detect_syntax,
    parse_check_directive,
)
from buildkit_py.frontend.dockerfile.parser.dump import dump_ast, dump_node
from buildkit_py.frontend.dockerfile.parser.nodes import (
    Directive,
    Heredoc,
    Node,
    ParseResult,
    ParseWarning,
)
from buildkit_py.frontend.dockerfile.parser.parse import parse_dockerfile

__all__ = [
    "CheckConfig",
    "CheckOptionError",
    "Directive",
    "Heredoc",
    "Node",
    "ParseResult",
    "ParseWarning",
    "detect_syntax",
    "dump_ast",
    "dump_node",
    "parse_check_directive",
    "parse_dockerfile",
]
