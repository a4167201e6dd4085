"""A small, documented subset of Go templates for ``bkpy imagetools inspect --format``.

Supported (everything else is refused with a :class:`TemplateError`):

* literal text, with ``{{ ... }}`` actions; ``{{-`` and ``-}}`` trim adjacent whitespace;
* field paths: ``.`` (the whole data), ``.Name``, ``.Manifest.Digest``,
  ``.Image.Config.Env``. Field names match JSON keys case-insensitively
  (``.Manifest.MediaType`` reads ``mediaType``); a missing key prints ``<no value>``;
* string literals ``"..."`` (Go escapes ``\\"``, ``\\\\``, ``\\n``, ``\\t``) and integers;
* functions ``json X`` (indented JSON, like buildx), ``index X "key"...`` (map key or list
  position), ``print A B...`` (operands joined, a space between two non-strings),
  ``println A B...`` (operands joined by spaces, then a newline);
* pipelines ``.Manifest | json`` (the left value becomes the last argument) and
  parenthesised sub-expressions ``json (index .Image "linux/amd64")``.

Values print as Go would for scalars (``true``, ``<nil>``); maps and lists print as compact
JSON (Go's ``map[...]`` form is of no use to scripts).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from buildkit_py.errors import UsageError

FUNCTIONS = ("json", "index", "print", "println")
NO_VALUE = "<no value>"


class TemplateError(UsageError):
    """A --format template uses syntax outside the supported subset or fails to evaluate."""


class Lazy:
    """A value computed on first use (e.g. image configs fetched from a registry)."""

    def __init__(self, compute: Callable[[], Any]) -> None:
        self._compute = compute
        self._done = False
        self._value: Any = None

    def get(self) -> Any:
        if not self._done:
            self._value = self._compute()
            self._done = True
        return self._value


def _force(value: Any) -> Any:
    return value.get() if isinstance(value, Lazy) else value


# --- parsing -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    path: tuple[str, ...]  # () is "."


@dataclass(frozen=True)
class _Const:
    value: str | int


@dataclass(frozen=True)
class _Call:
    func: str  # "" = a lone operand
    args: tuple[Any, ...]  # _Field | _Const | _Pipe


@dataclass(frozen=True)
class _Pipe:
    commands: tuple[_Call, ...]


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*")
      | (?P<field>\.(?:[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)?)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<num>-?[0-9]+)(?![A-Za-z0-9_.])
      | (?P<punct>[()|])
      | (?P<other>\S+)
    )""",
    re.VERBOSE,
)
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}


def _unquote(text: str, action: str) -> str:
    out = []
    i = 1
    while i < len(text) - 1:
        ch = text[i]
        if ch == "\\":
            nxt = text[i + 1]
            if nxt not in _ESCAPES:
                raise TemplateError(f"template action {{{{{action}}}}}: unsupported escape "
                                    f"\\{nxt} in a string")
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


class _ActionParser:
    def __init__(self, action: str) -> None:
        self.action = action
        self.tokens: list[tuple[str, str]] = []
        for m in _TOKEN.finditer(action):
            kind = m.lastgroup
            if kind is None:
                continue
            self.tokens.append((kind, m.group(kind)))
        self.pos = 0

    def error(self, why: str) -> TemplateError:
        return TemplateError(
            f"template action {{{{{self.action}}}}}: {why}",
            hint="supported: field paths like .Name or .Manifest.Digest, string literals, "
                 "pipes, and the functions " + ", ".join(FUNCTIONS),
        )

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def parse(self) -> _Pipe:
        if not self.tokens:
            raise self.error("empty action")
        pipe = self.pipeline()
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return pipe

    def pipeline(self) -> _Pipe:
        commands = [self.command()]
        while (tok := self.peek()) is not None and tok == ("punct", "|"):
            self.pos += 1
            cmd = self.command()
            if not cmd.func:
                raise self.error("a pipe must lead to a function")
            commands.append(cmd)
        return _Pipe(tuple(commands))

    def command(self) -> _Call:
        tok = self.peek()
        func = ""
        if tok is not None and tok[0] == "ident":
            if tok[1] not in FUNCTIONS:
                if tok[1] in ("if", "range", "with", "define", "template", "block", "end",
                              "else"):
                    raise self.error(f"{tok[1]!r} blocks are not supported")
                raise self.error(f"unknown function {tok[1]!r}")
            func = tok[1]
            self.pos += 1
        args: list[Any] = []
        while (tok := self.peek()) is not None and tok not in (("punct", "|"), ("punct", ")")):
            kind, text = tok
            self.pos += 1
            if kind == "str":
                args.append(_Const(_unquote(text, self.action)))
            elif kind == "num":
                args.append(_Const(int(text)))
            elif kind == "field":
                args.append(_Field(tuple(p for p in text[1:].split(".") if p)))
            elif tok == ("punct", "("):
                args.append(self.pipeline())
                if self.peek() != ("punct", ")"):
                    raise self.error("missing ')'")
                self.pos += 1
            elif kind == "ident":
                raise self.error(f"function {text!r} must be called in parentheses "
                                 "when used as an argument")
            else:
                raise self.error(f"unsupported syntax {text!r}")
        if not func and len(args) != 1:
            raise self.error("expected one value" if not args else
                             "several values without a function")
        return _Call(func, tuple(args))


@dataclass(frozen=True)
class Template:
    """A parsed template: literal text and actions, in order."""

    parts: tuple[str | _Pipe, ...]
    source: str

    def render(self, data: Any) -> str:
        out = []
        for part in self.parts:
            out.append(part if isinstance(part, str) else _text(_eval_pipe(part, data)))
        return "".join(out)

    @property
    def only_action(self) -> _Pipe | None:
        """The single action when the template is exactly one ``{{...}}``."""
        if len(self.parts) == 1 and isinstance(self.parts[0], _Pipe):
            return self.parts[0]
        return None

    def is_field(self, *path: str) -> bool:
        """Whether the template is exactly ``{{.Path}}`` (e.g. buildx's default
        ``{{.Manifest}}``)."""
        pipe = self.only_action
        if pipe is None or len(pipe.commands) != 1:
            return False
        cmd = pipe.commands[0]
        return not cmd.func and cmd.args == (_Field(path),)


def parse(source: str) -> Template:
    """Parse ``source``; raises :class:`TemplateError` for anything outside the subset."""
    parts: list[str | _Pipe] = []
    pos = 0
    trim_next = False
    while True:
        start = source.find("{{", pos)
        text = source[pos:] if start < 0 else source[pos:start]
        if trim_next:
            text = text.lstrip()
        if start < 0:
            if "}}" in text:
                raise TemplateError(f"template {source!r}: unexpected '}}}}' without '{{{{'")
            if text:
                parts.append(text)
            break
        end = source.find("}}", start + 2)
        if end < 0:
            raise TemplateError(f"template {source!r}: unclosed action (missing '}}}}')")
        action = source[start + 2:end]
        if action.startswith("- ") or action == "-":
            text = text.rstrip()
            action = action[1:]
        trim_next = action.endswith(" -")
        if trim_next:
            action = action[:-1]
        if text:
            parts.append(text)
        action = action.strip()
        if action.startswith("/*"):
            pos = end + 2
            continue  # a comment
        parts.append(_ActionParser(action).parse())
        pos = end + 2
    return Template(tuple(parts), source)


# --- evaluation ----------------------------------------------------------------------


def _lookup(value: Any, path: tuple[str, ...]) -> Any:
    for i, name in enumerate(path):
        value = _force(value)
        if isinstance(value, Mapping):
            if name in value:
                value = value[name]
                continue
            lowered = name.lower()
            match = next((k for k in value if isinstance(k, str) and k.lower() == lowered),
                         None)
            if match is None:
                if i == 0 and getattr(value, "strict", False):
                    raise TemplateError(
                        f"template: no field {name!r}",
                        hint="fields: " + ", ".join(sorted(value)),
                    )
                return None
            value = value[match]
        elif value is None:
            return None
        else:
            raise TemplateError(f"template: cannot read field {name!r} of a "
                                f"{type(value).__name__} value")
    return _force(value)


def _eval_arg(arg: Any, data: Any) -> Any:
    if isinstance(arg, _Const):
        return arg.value
    if isinstance(arg, _Field):
        return _lookup(data, arg.path)
    return _eval_pipe(arg, data)


def _eval_pipe(pipe: _Pipe, data: Any) -> Any:
    result: Any = None
    for n, cmd in enumerate(pipe.commands):
        args = [_eval_arg(a, data) for a in cmd.args]
        if n > 0:
            args.append(result)
        result = _call(cmd.func, args) if cmd.func else args[0]
    return result


def _plain(value: Any) -> Any:
    """Resolve lazies and template-only mapping types into JSON-able values."""
    value = _force(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _call(func: str, args: list[Any]) -> Any:
    if func == "json":
        if len(args) != 1:
            raise TemplateError(f"template: json takes one argument, got {len(args)}")
        return json.dumps(_plain(args[0]), indent=2, ensure_ascii=False)
    if func == "index":
        if not args:
            raise TemplateError("template: index needs a value")
        value = _force(args[0])
        for key in args[1:]:
            value = _force(value)
            if isinstance(value, Mapping):
                value = value.get(key) if isinstance(key, str) else None
            elif isinstance(value, list) and isinstance(key, int):
                value = value[key] if 0 <= key < len(value) else None
            elif isinstance(value, list):
                raise TemplateError("template: index of a list needs a number")
            else:
                return None
        return _force(value)
    if func == "print":
        out = []
        for i, a in enumerate(args):
            if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
                out.append(" ")
            out.append(_text(a))
        return "".join(out)
    # println
    return " ".join(_text(a) for a in args) + "\n"


def _text(value: Any) -> str:
    value = _force(value)
    if isinstance(value, str):
        return str(value)
    if value is None:
        return NO_VALUE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False)


class Fields(dict[str, Any]):
    """The top-level data: unknown field names are errors (Go structs), not ``<no value>``."""

    strict = True
