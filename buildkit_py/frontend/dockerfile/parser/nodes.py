"""The parse tree: one :class:`Node` per logical instruction, like BuildKit's ``parser.Node``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from buildkit_py.errors import SourceLocation

_LEADING_TABS = re.compile(r"^\t+", re.M)


@dataclass(slots=True)
class Heredoc:
    """A heredoc attached to a RUN/COPY/ADD line (``<<EOF`` ... ``EOF``)."""

    name: str
    content: str = ""
    file_descriptor: int = 0
    expand: bool = True  # False when any part of the delimiter word was quoted
    chomp: bool = False  # ``<<-``: leading tabs are stripped from the body

    def body(self) -> str:
        """The content as the instruction sees it (leading tabs removed for ``<<-``)."""
        return _LEADING_TABS.sub("", self.content) if self.chomp else self.content


@dataclass(slots=True, eq=False)
class Node:
    """One parsed instruction.

    ``args`` follow BuildKit's per-instruction argument shapes (see the dump format):
    e.g. ``ENV a=b`` gives ``["a", "b", "="]``; ``ONBUILD RUN x`` keeps the wrapped
    instruction in ``sub`` and has no ``args``.
    """

    keyword: str  # the instruction word as written ("RUN", "run", "FOO", ...)
    flags: list[str]  # unquoted `--name=value` words
    args: list[str]
    json: bool = False  # arguments came from a JSON array (exec form)
    sub: Node | None = None  # the instruction wrapped by ONBUILD
    original: str = ""  # the joined logical line, continuation characters removed
    start_line: int = 0
    end_line: int = 0
    heredocs: list[Heredoc] = field(default_factory=list)
    prev_comment: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The instruction name in lower case (``run``, ``copy``, ...)."""
        return self.keyword.lower()

    def can_contain_heredoc(self) -> bool:
        """True for shell-form RUN/COPY/ADD, also when wrapped by ONBUILD."""
        node = self
        if node.name == "onbuild" and node.sub is not None:
            node = node.sub
        return node.name in ("run", "copy", "add") and not node.json


@dataclass(frozen=True, slots=True)
class Directive:
    """A parser directive (``# syntax=...``, ``# escape=...``, ``# check=...``)."""

    name: str  # lower case
    value: str
    line: int


@dataclass(frozen=True, slots=True)
class ParseWarning:
    """A problem that does not stop the parse (BuildKit prints these as warnings)."""

    rule: str  # e.g. "NoEmptyContinuation"
    message: str
    detail: str
    location: SourceLocation


@dataclass(slots=True)
class ParseResult:
    """What :func:`parse_dockerfile` returns."""

    nodes: list[Node]
    directives: list[Directive]
    warnings: list[ParseWarning]
    escape: str
    filename: str
    lines: list[str]  # the physical lines (line endings removed), for error snippets
    # the lines as BuildKit's snippets count them (a final newline ends in an empty line)
    source: list[str] | None = None

    def directive(self, name: str) -> Directive | None:
        for d in self.directives:
            if d.name == name:
                return d
        return None

    def location(self, start: int, end: int | None = None) -> SourceLocation:
        """A :class:`SourceLocation` with the text of lines ``start..end`` (1-based)."""
        return make_location(self.filename, self.lines, start, end, self.source)


def make_location(
    filename: str, lines: list[str], start: int, end: int | None = None,
    source: list[str] | None = None,
) -> SourceLocation:
    start = max(start, 1)
    end = start if end is None or end < start else end
    text = tuple(lines[start - 1 : end])
    return SourceLocation(filename=filename, start_line=start, end_line=end, lines=text,
                          source=lines if source is None else source)
