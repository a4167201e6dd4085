"""``parse_dockerfile``: physical lines -> logical instructions -> Lark -> :class:`Node` list.

Line-level work that depends on the escape character stays in Python, as in BuildKit's
``parser.Parse``: BOM and line endings, parser directives, comments, joining continuation
lines, and reading heredoc bodies. Every logical instruction is then parsed by the Lark
grammar; all of them in one Lark call, except the rare lines holding ``<<`` whose node must
be known before the following lines can be read (they may be heredoc bodies).
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from buildkit_py.errors import DockerfileError
from buildkit_py.frontend.dockerfile.parser import grammar
from buildkit_py.frontend.dockerfile.parser.directives import DirectiveError, DirectiveScanner
from buildkit_py.frontend.dockerfile.parser.lalr import LalrParser, SyntaxFailure
from buildkit_py.frontend.dockerfile.parser.nodes import (
    Directive,
    Heredoc,
    Node,
    ParseResult,
    ParseWarning,
    make_location,
)
from buildkit_py.frontend.dockerfile.parser.tree import NodeBuilder, NodeError, current_text
from buildkit_py.frontend.dockerfile.parser.words import GO_SPACE, shell_unquote

MAX_LINE_BYTES = 65535  # BuildKit's line scanner buffer (64 KiB) less the newline
_HEREDOC_WORD = re.compile(r"(\d*)<<(-?)(.*)", re.S)
_ONBUILD_PREFIX = re.compile(r"(?i)^\s*ONBUILD\s*")

_builders: dict[str, NodeBuilder] = {}


def _parser(escape: str) -> LalrParser:
    builder = _builders.get(escape)
    if builder is None:
        builder = _builders.setdefault(escape, NodeBuilder(escape))
    return grammar.get_parser(escape, builder)


def decode(data: bytes | bytearray | memoryview | str) -> str:
    """Dockerfile bytes as text; bytes that are not UTF-8 survive as lone surrogates."""
    if isinstance(data, str):
        return data
    return bytes(data).decode("utf-8", "surrogateescape")


@dataclass(slots=True)
class _Logical:
    """One instruction's joined text and where it came from."""

    text: str  # joined continuation lines (BuildKit's Node.Original)
    start: int
    end: int
    comments: list[str]
    node: Node | None = None  # parsed early (lines holding "<<")
    heredocs: list[Heredoc] = field(default_factory=list)


class _Scanner:
    """BuildKit's line loop. ``logical`` holds what was read before any error."""

    def __init__(self, physical: list[str], final_newline: bool, filename: str) -> None:
        self.physical = physical
        self.final_newline = final_newline
        self.filename = filename
        self.lines = [p.rstrip("\r") for p in physical]
        self.source = [*self.lines, ""] if final_newline else self.lines
        self.logical: list[_Logical] = []
        self.directives: list[Directive] = []
        self.warnings: list[ParseWarning] = []
        self.escape = "\\"

    def _error(
        self, message: str, start: int, end: int | None = None, hint: str | None = None
    ) -> DockerfileError:
        loc = make_location(self.filename, self.lines, start, end, self.source)
        return DockerfileError(message, loc, hint=hint)

    def run(self) -> None:
        physical, lines = self.physical, self.lines
        n = len(physical)
        directives = DirectiveScanner()
        comments: list[str] = []
        esc = "\\"
        i = 0  # index of the next physical line; also BuildKit's currentLine once read
        while i < n:
            raw = lines[i]
            i += 1
            if len(raw) > MAX_LINE_BYTES // 4 and _too_long(raw):
                raise self._error(
                    f"dockerfile line greater than max allowed size of {MAX_LINE_BYTES}", i
                )
            stripped = raw.lstrip(GO_SPACE)
            is_comment = stripped.startswith("#")
            if is_comment:
                # BuildKit drops the first byte, not the "#" (an indented comment keeps it).
                comment = raw[1:].strip(GO_SPACE)
                if comment:
                    comments.append(comment)
                else:
                    comments = []
            if not directives.done:
                try:
                    found = directives.feed(stripped)
                except DirectiveError as err:
                    raise self._error(str(err), i, hint=err.hint) from None
                if found is not None:
                    self.directives.append(Directive(found[0], found[1], i))
                    if comments:
                        comments.pop()
                    if found[0] == "escape":
                        esc = self.escape = found[1]
            start = i
            content, ends = _trim_continuation("" if is_comment else stripped, esc)
            if ends and not content:
                continue
            parts = [content]
            empty_continuation = False
            while not ends and i < n:
                line = lines[i]
                i += 1
                if len(line) > MAX_LINE_BYTES // 4 and _too_long(line):
                    raise self._error(
                        f"dockerfile line greater than max allowed size of {MAX_LINE_BYTES}", i
                    )
                head = line.lstrip(GO_SPACE)
                if head.startswith("#"):
                    continue
                if not head:
                    empty_continuation = True
                    continue
                content, ends = _trim_continuation(line, esc)
                parts.append(content)
            text = "".join(parts)
            if empty_continuation:
                self.warnings.append(
                    ParseWarning(
                        rule="NoEmptyContinuation",
                        message="Empty continuation line found in: " + text,
                        detail="Empty continuation lines will become errors in a future release",
                        location=make_location(self.filename, lines, i),
                    )
                )
            logical = _Logical(text, start, i, comments)
            comments = []
            if "<<" in text:
                node = self._parse_early(logical)
                logical.node = node
                if node.can_contain_heredoc():
                    i = self._read_heredocs(logical, i)
            self.logical.append(logical)

    def _parse_early(self, logical: _Logical) -> Node:
        try:
            return parse_logical_lines([logical.text.strip(GO_SPACE)], self.escape)[0]
        except NodeError as err:
            raise self._error(err.message, logical.start, logical.end, err.hint) from None

    def _read_heredocs(self, logical: _Logical, i: int) -> int:
        words = _parser("\\").parse(logical.text, start="heredoc_scan")
        physical, n = self.physical, len(self.physical)
        for word in words:
            m = _HEREDOC_WORD.fullmatch(word)
            if m is None:  # pragma: no cover - the grammar only yields heredoc words
                continue
            name, quotes = shell_unquote(m.group(3))
            doc = Heredoc(
                name=name,
                file_descriptor=int(m.group(1) or 0),
                expand=quotes == 0,
                chomp=m.group(2) == "-",
            )
            body: list[str] = []
            terminated = False
            while i < n:
                raw = physical[i]
                i += 1
                candidate = raw.rstrip("\r")
                if doc.chomp:
                    candidate = candidate.lstrip("\t")
                if candidate == name:
                    terminated = True
                    break
                # Body lines keep their own line ending (even "\r\n"), as in BuildKit.
                body.append(raw + "\n" if i < n or self.final_newline else raw)
            if not terminated:
                raise self._error(
                    "unterminated heredoc",
                    logical.start,
                    i,
                    f"end the heredoc with a line holding only {name!r}",
                )
            doc.content = "".join(body)
            logical.heredocs.append(doc)
        logical.end = i
        return i


def _too_long(line: str) -> bool:
    return len(line.encode("utf-8", "surrogateescape")) > MAX_LINE_BYTES


def _trim_continuation(line: str, esc: str) -> tuple[str, bool]:
    """Remove a trailing continuation character; returns (line, instruction_ended)."""
    body = line.rstrip(" \t")
    if not body.endswith(esc):
        return line, True
    if len(body) >= 2 and body[-2] == esc:  # an escaped escape character ends the line
        return line, True
    return body[:-1], False


def parse_logical_lines(texts: list[str], escape: str) -> list[Node]:
    """Parse trimmed logical instructions (one per entry) with the Lark grammar."""
    nodes: list[Node | None] = [None] * len(texts)
    batch: list[str] = []
    where: list[int] = []
    for idx, text in enumerate(texts):
        if text:
            batch.append(text)
            where.append(idx)
        else:  # an instruction made only of continuation characters: BuildKit's empty node
            nodes[idx] = Node("", [], [""])
    if batch:
        token = current_text.set("\n".join(batch) + "\n")
        try:
            parsed: list[Node] = _parser(escape).parse(current_text.get(), start="start")
        except NodeError as err:
            err.line = where[err.line - 1] + 1
            raise
        except SyntaxFailure as err:  # pragma: no cover - the grammar accepts any line
            raise NodeError("unexpected syntax", where[err.line - 1] + 1) from None
        finally:
            current_text.reset(token)
        for idx, node in zip(where, parsed, strict=True):
            nodes[idx] = node
    return [n for n in nodes if n is not None]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building many small acyclic objects (~25% faster parses).

    Only the outermost user re-enables it, so nested or concurrent parses are safe.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_dockerfile(
    data: bytes | bytearray | memoryview | str, filename: str = "Dockerfile"
) -> ParseResult:
    """Parse a Dockerfile into BuildKit's parse tree (no variable expansion)."""
    with gc_paused():
        return _parse(data, filename)


def _parse(data: bytes | bytearray | memoryview | str, filename: str) -> ParseResult:
    text = decode(data)
    if text.startswith("\ufeff"):
        text = text[1:]
    physical = text.split("\n")
    final_newline = physical[-1] == ""
    if final_newline:
        physical.pop()
    scanner = _Scanner(physical, final_newline, filename)
    try:
        scanner.run()
    except DockerfileError as scan_error:
        # BuildKit stops at the first error in file order: an instruction read before the
        # scanner failed may hold an earlier one.
        _nodes_for(scanner, scanner.logical)
        raise scan_error from None
    nodes = _nodes_for(scanner, scanner.logical)
    if not nodes:
        raise DockerfileError(
            "file with no instructions",
            make_location(filename, scanner.lines, len(physical), source=scanner.source),
            hint="a Dockerfile needs at least a FROM instruction",
        )
    return ParseResult(
        nodes=nodes,
        directives=scanner.directives,
        warnings=scanner.warnings,
        escape=scanner.escape,
        filename=filename,
        lines=scanner.lines,
        source=scanner.source,
    )


def _nodes_for(scanner: _Scanner, logical: list[_Logical]) -> list[Node]:
    todo = [lg for lg in logical if lg.node is None]
    try:
        parsed = parse_logical_lines([lg.text.strip(GO_SPACE) for lg in todo], scanner.escape)
    except NodeError as err:
        bad = todo[err.line - 1]
        raise scanner._error(err.message, bad.start, bad.end, err.hint) from None
    for lg, node in zip(todo, parsed, strict=True):
        lg.node = node
    out: list[Node] = []
    for lg in logical:
        assert lg.node is not None
        node = lg.node
        node.original = lg.text
        node.start_line = lg.start
        node.end_line = lg.end
        node.heredocs = lg.heredocs
        node.prev_comment = lg.comments
        if node.sub is not None:
            sub = node.sub
            sub.original = _ONBUILD_PREFIX.sub("", lg.text, count=1)
            sub.start_line, sub.end_line = lg.start, lg.end
        out.append(node)
    return out
