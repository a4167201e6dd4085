"""Compiling every lexer state up front (the command server does it before forking)
changes nothing about what is parsed."""

from __future__ import annotations

from buildkit_py.frontend.dockerfile.parser.dump import dump_ast
from buildkit_py.frontend.dockerfile.parser.grammar import compile_loaded_parsers, get_parser
from buildkit_py.frontend.dockerfile.parser.parse import parse_dockerfile

TEXT = b"ARG X=1\nFROM busybox AS a\nRUN --mount=type=cache,target=/c echo $X\nCMD [\"sh\"]\n"


def test_compile_all_covers_every_state_and_keeps_results() -> None:
    before = dump_ast(parse_dockerfile(TEXT))
    compile_loaded_parsers()
    parser = get_parser("\\", None)
    assert set(parser._patterns) == set(parser.actions)
    assert dump_ast(parse_dockerfile(TEXT)) == before
