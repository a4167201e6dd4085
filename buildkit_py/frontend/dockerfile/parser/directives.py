"""Parser directives: ``# syntax=``, ``# escape=`` and ``# check=`` at the top of a file."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from buildkit_py.gostrings import go_quote

KNOWN_DIRECTIVES = ("syntax", "escape", "check")

# Go's `\s` (ASCII space, \t, \n, \f, \r) around the key, `=` and the value.
_KEY_VALUE = r"[\t\n\f\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z"
_DIRECTIVE = re.compile("#" + _KEY_VALUE)
_C_DIRECTIVE = re.compile("//" + _KEY_VALUE)


class DirectiveError(Exception):
    """A repeated directive or an invalid escape character."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass
class DirectiveScanner:
    """Feeds lines until the first line that is not a known directive (BuildKit's rules)."""

    done: bool = False
    seen: set[str] = field(default_factory=set)

    def feed(self, line: str) -> tuple[str, str] | None:
        """The (key, value) if ``line`` is a directive; raises on a repeated one."""
        if self.done:
            return None
        m = _DIRECTIVE.match(line)
        if m is None:
            self.done = True
            return None
        key = m.group(1).lower()
        if key not in KNOWN_DIRECTIVES:
            self.done = True
            return None
        if key in self.seen:
            raise DirectiveError(
                f"only one {key} parser directive can be used", "remove the repeated directive"
            )
        self.seen.add(key)
        value = m.group(2)
        if key == "escape" and value not in ("\\", "`"):
            raise DirectiveError(
                f"invalid escape token '{value}' does not match ` or \\",
                "write # escape=\\ (the default) or # escape=`",
            )
        return key, value


def detect_syntax(text: str) -> str | None:
    """The frontend reference named by a ``syntax`` directive, as BuildKit detects it.

    Besides ``# syntax=``, accepts ``// syntax=`` and a JSON object ``{"syntax": "..."}``,
    and skips a leading ``#!`` shebang line. Only the first word of the value counts.
    """
    text = text.removeprefix("\ufeff")
    first, _, rest = text.partition("\n")
    if first.startswith("#!"):
        text = rest
    for pattern in (_DIRECTIVE, _C_DIRECTIVE):
        seen: set[str] = set()
        for line in text.split("\n"):
            m = pattern.match(line.rstrip("\r"))
            if m is None:
                break
            key = m.group(1).lower()
            if key not in KNOWN_DIRECTIVES or key in seen:
                break
            seen.add(key)
            if key == "syntax":
                return m.group(2).split(" ", 1)[0]
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    value = obj.get("syntax") if isinstance(obj, dict) else None
    return value if isinstance(value, str) else None


class CheckOptionError(ValueError):
    """A malformed ``check`` value, worded as BuildKit words it."""


@dataclass(frozen=True)
class CheckConfig:
    """The ``# check=skip=A,B;error=true;experimental=C`` directive (BuildKit's linter
    config; the same syntax serves the ``BUILDKIT_DOCKERFILE_CHECK`` build arg)."""

    skip: tuple[str, ...] = ()
    skip_all: bool = False
    experimental: tuple[str, ...] = ()
    experimental_all: bool = False
    error: bool = False

    def merged(self, other: CheckConfig) -> CheckConfig:
        """BuildKit's WithMergedConfig: the other's skips and experiments are added (its
        ``error`` is not)."""
        return CheckConfig(
            skip=self.skip + other.skip, skip_all=self.skip_all or other.skip_all,
            experimental=self.experimental + other.experimental,
            experimental_all=self.experimental_all or other.experimental_all,
            error=self.error)


_GO_BOOLS = {
    "1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
    "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False,
}


def parse_go_bool(value: str) -> bool | None:
    """Go's ``strconv.ParseBool``: None when ``value`` is not a boolean."""
    return _GO_BOOLS.get(value)


def _names(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(","))


def parse_check_directive(value: str) -> CheckConfig:
    """Parse a ``check`` value (BuildKit's ParseLintOptions); raises CheckOptionError."""
    value = value.strip()
    if not value:
        return CheckConfig()
    skip: tuple[str, ...] = ()
    experimental: tuple[str, ...] = ()
    skip_all = experimental_all = error = False
    for part in value.split(";", 2):  # Go's SplitN(..., 3): a third part keeps its ';'
        key, eq, val = part.partition("=")
        if not eq:
            raise CheckOptionError(f"invalid check option {go_quote(part)}")
        key, val = key.strip(), val.strip()
        if key == "skip":
            if val == "all":
                skip_all = True
            else:
                skip = _names(val)
        elif key == "experimental":
            if val == "all":
                experimental_all = True
            else:
                experimental = _names(val)
        elif key == "error":
            parsed = parse_go_bool(val)
            if parsed is None:
                raise CheckOptionError(
                    f"failed to parse check option {go_quote(part)}: strconv.ParseBool: "
                    f"parsing {go_quote(val)}: invalid syntax")
            error = parsed
        else:
            raise CheckOptionError(f"invalid check option {go_quote(key)}")
    return CheckConfig(skip=skip, skip_all=skip_all, experimental=experimental,
                       experimental_all=experimental_all, error=error)
