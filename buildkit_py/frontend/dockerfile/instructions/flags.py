"""Flags of an instruction (``--name=value``), validated like BuildKit's ``BFlags``."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from buildkit_py.frontend.dockerfile.suggest import suggest


class FlagKind(Enum):
    STRING = "string"
    BOOL = "bool"
    STRINGS = "strings"  # repeatable


class FlagError(ValueError):
    """A malformed, unknown or repeated flag; ``hint`` suggests a fix."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass
class FlagValues:
    """Parsed flags: ``get`` for single flags, ``get_all`` for repeatable ones."""

    values: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def get_bool(self, name: str) -> bool | None:
        value = self.values.get(name)
        return None if value is None else value == "true"

    def get_all(self, name: str) -> list[str]:
        return self.lists.get(name, [])


def parse_flags(instruction: str, flags: list[str], spec: dict[str, FlagKind]) -> FlagValues:
    """Validate ``flags`` (as the parser unquoted them) against what ``instruction`` takes."""
    out = FlagValues()
    for raw in flags:
        if raw == "--":  # the end of the flags (POSIX utility syntax), as in BuildKit
            break
        if not raw.startswith("--"):
            raise FlagError(f"arg should start with -- : {raw}")
        name, eq, value = raw[2:].partition("=")
        kind = spec.get(name)
        if kind is None:
            raise FlagError(suggest(f"unknown flag: --{name}", name, spec, case_sensitive=True),
                            _allowed(instruction, spec))
        if kind is FlagKind.STRINGS:
            if not eq:
                raise FlagError(f"missing a value on flag: --{name}")
            out.lists.setdefault(name, []).append(value)
            continue
        if name in out.values:
            raise FlagError(f"duplicate flag specified: --{name}")
        if kind is FlagKind.BOOL:
            if not eq:
                value = "true"
            elif not value:
                raise FlagError(f"missing a value on flag: --{name}")
            value = value.lower()
            if value not in ("true", "false"):
                given = raw[len(name) + 3 :]
                raise FlagError(f"expecting boolean value for flag --{name}, not: {given}")
        elif not eq:
            raise FlagError(f"missing a value on flag: --{name}")
        out.values[name] = value
    return out


def _allowed(instruction: str, spec: dict[str, FlagKind]) -> str:
    if not spec:
        return f"{instruction} takes no flags"
    return f"{instruction} takes " + ", ".join(f"--{n}" for n in spec)
