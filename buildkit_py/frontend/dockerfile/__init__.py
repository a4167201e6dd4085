"""The Dockerfile frontend: parse, typed instructions, conversion to LLB.

The entry points are imported lazily so that importing this package stays cheap:

- ``parse_dockerfile(data, filename="Dockerfile") -> ParseResult`` (parse tree)
- ``dump_ast(result) -> str`` (BuildKit's S-expression dump)
- ``load_dockerfile(data, filename="Dockerfile") -> Dockerfile`` (typed stages)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from buildkit_py.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from buildkit_py.frontend.dockerfile.instructions import Dockerfile, load_dockerfile
    from buildkit_py.frontend.dockerfile.parser import ParseResult, dump_ast, parse_dockerfile

_LAZY = {
    "parse_dockerfile": "buildkit_py.frontend.dockerfile.parser",
    "dump_ast": "buildkit_py.frontend.dockerfile.parser",
    "ParseResult": "buildkit_py.frontend.dockerfile.parser",
    "load_dockerfile": "buildkit_py.frontend.dockerfile.instructions",
    "Dockerfile": "buildkit_py.frontend.dockerfile.instructions",
}

__all__ = ["Dockerfile", "ParseResult", "dump_ast", "load_dockerfile", "parse_dockerfile"]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
