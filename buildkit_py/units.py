"""Docker's value grammars, as buildx reads them: sizes and ulimits (docker/go-units) and
the ``key=value,...`` lists of ``--output``, ``--secret``, ``--cache-to``...

``--shm-size``, a tmpfs mount's ``size=`` and ``--ulimit`` take these forms in buildx and
the Dockerfile frontend; parsing them in one place keeps the CLI and the frontend in step.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass

from buildkit_py.errors import UsageError

_RAM = re.compile(r"(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?")

# The names ``--ulimit`` accepts (setrlimit resources without the RLIMIT_ prefix).
ULIMIT_NAMES = frozenset({
    "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
    "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"})


def ram_in_bytes(value: str) -> int:
    """go-units ``RAMInBytes``: ``64m`` -> 67108864 (binary units); ValueError if invalid."""
    m = _RAM.fullmatch(value)
    if m is None:
        raise ValueError(f"invalid size: '{value}'")
    try:
        number = float(m.group(1))  # "1.2.3" matches the pattern but is no number
    except ValueError:
        raise ValueError(f"invalid size: '{value}'") from None
    unit = (m.group(2) or "").lower()
    power = "kmgtp".index(unit) + 1 if unit else 0
    return int(number * 1024**power)


@dataclass(frozen=True)
class Ulimit:
    """One resource limit of a RUN process; -1 is unlimited."""

    name: str
    soft: int
    hard: int

    def __str__(self) -> str:
        return f"{self.name}={self.soft}:{self.hard}"


def _go_int(text: str) -> int:
    # strconv.ParseInt's wording, which buildx shows for a bad number
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    return int(text)


def parse_ulimit(value: str) -> Ulimit:
    """``name=soft[:hard]`` (go-units ``ParseUlimit``); ValueError with its wording."""
    name, sep, limits = value.partition("=")
    if not sep:
        raise ValueError(f"invalid ulimit argument: {value}")
    if name not in ULIMIT_NAMES:
        raise ValueError(f"invalid ulimit type: {name}")
    parts = limits.split(":")
    if len(parts) > 2:
        raise ValueError(f"too many limit value arguments - {limits}, can only have up to "
                         "two, `soft[:hard]`")
    hard = _go_int(parts[1]) if len(parts) == 2 else None
    soft = _go_int(parts[0])  # the hard value is read first, as go-units does
    if hard is None:
        hard = soft
    if hard != -1:
        if soft == -1:
            raise ValueError("ulimit soft limit must be less than or equal to hard limit: "
                             f"soft: -1 (unlimited), hard: {hard}")
        if soft > hard:
            raise ValueError("ulimit soft limit must be less than or equal to hard limit: "
                             f"{soft} > {hard}")
    return Ulimit(name, soft, hard)


def parse_csv_kv(spec: str, what: str) -> dict[str, str]:
    """``a=b,c=d`` (csv quoting allowed, as docker does) -> dict."""
    try:
        fields = next(csv.reader([spec]))
    except (csv.Error, StopIteration):
        raise UsageError(f"invalid {what} {spec!r}") from None
    out: dict[str, str] = {}
    for f in fields:
        key, sep, value = f.partition("=")
        key = key.strip().lower()
        if not key:
            raise UsageError(f"invalid {what} {spec!r}: empty key")
        out[key] = value if sep else ""
    return out
