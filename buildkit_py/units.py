"""Docker's value grammars, as buildx reads them: sizes and ulimits (docker/go-units) and
the ``key=value,...`` lists of ``--output``, ``--secret``, ``--cache-to``...

``--shm-size``, a tmpfs mount's ``size=``, ``prune --keep-storage``, buildkitd.toml's GC
sizes and ``--ulimit`` take these forms in buildx, the Dockerfile frontend and buildkitd;
every size is binary there (go-units ``RAMInBytes``: ``10GB`` is 10 GiB). Parsing them in
one place keeps the CLI, the frontend and the config in step. Printing too: go-units'
``HumanSize`` (decimal), ``BytesSize`` (binary) and ``HumanDuration``, as buildx shows
sizes and ages in ``du``, ``prune`` and ``builder inspect``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass

from buildkit_py.errors import UsageError

_RAM = re.compile(r"(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?")

# The names ``--ulimit`` accepts (setrlimit resources without the RLIMIT_ prefix).
ULIMIT_NAMES = frozenset({
    "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
    "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"})


def _four_digits(n: float, base: float, units: tuple[str, ...]) -> str:
    value, unit = float(n), units[0]
    for unit in units:
        if value < base or unit == units[-1]:
            break
        value /= base
    return f"{value:.4g}{unit}"


def human_size(n: float) -> str:
    """go-units ``HumanSize``: decimal units, four significant digits (``4.096kB``)."""
    return _four_digits(n, 1000.0, ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"))


def bytes_size(n: float) -> str:
    """go-units ``BytesSize``: binary units, four significant digits (``488.3MiB``)."""
    return _four_digits(n, 1024.0, ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"))


def human_duration(seconds: float) -> str:
    """go-units ``HumanDuration`` (``46 seconds``, ``About an hour``, ``3 days``)."""
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = secs // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


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
class DiskSpace:
    """A size in buildkitd.toml: bytes, or a percentage of the disk holding the state."""

    bytes: int = 0
    percentage: int = 0

    def as_bytes(self, disk_total: int) -> int:
        """BuildKit's conversion: a percentage of the disk, rounded up to whole GiB and
        then counted in (decimal) GB; 2 GB when the disk size is unknown."""
        if self.bytes or not self.percentage:
            return self.bytes
        if disk_total <= 0:
            return 2 * 10**9
        share = disk_total * self.percentage // 100
        return (share // (1 << 30) + 1) * 10**9

    def __bool__(self) -> bool:
        return bool(self.bytes or self.percentage)


def parse_disk_space(value: str | int) -> DiskSpace:
    """buildkitd.toml's sizes: ``10GB`` (binary, as go-units reads it), ``20`` (bytes) or
    ``10%`` (of the disk); ValueError if invalid."""
    if isinstance(value, bool):
        raise ValueError(f"invalid disk space {value}")
    if isinstance(value, int):
        return DiskSpace(bytes=value)
    text = value.strip()
    if text.endswith("%"):
        if not re.fullmatch(r"[+-]?\d+", text[:-1]):
            raise ValueError(f"invalid disk space {value}: not a whole percentage")
        return DiskSpace(percentage=int(text[:-1]))
    if not text:
        return DiskSpace()
    try:
        return DiskSpace(bytes=ram_in_bytes(text))
    except ValueError:
        raise ValueError(f"invalid disk space {value}") from None


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


@dataclass(frozen=True)
class FilterSelector:
    """``field==value``, ``field!=value``, ``field~=regexp`` or a bare ``field`` (present)."""

    field: str
    op: str = ""
    value: str = ""


_SELECTOR = re.compile(
    r'\s*([A-Za-z_][\w.]*)\s*(?:(==|!=|~=)\s*("(?:[^"\\]|\\.)*"|/(?:[^/\\]|\\.)*/|[^,]*?))?\s*'
    r'(,|$)')


def parse_prune_filters(filters: tuple[str, ...] | list[str]) -> list[list[FilterSelector]]:
    """containerd's filter syntax, as BuildKit's prune and GC policies read it: each string
    is selectors joined by ``,`` (all must match); a record matches when one string does.
    ValueError for a malformed filter."""
    out: list[list[FilterSelector]] = []
    for text in filters:
        selectors: list[FilterSelector] = []
        pos = 0
        while pos < len(text):
            m = _SELECTOR.match(text, pos)
            if m is None or m.end() == pos:
                raise ValueError(f"invalid filter {text!r}")
            field, op, value = m.group(1), m.group(2) or "", m.group(3) or ""
            if op and not value:
                raise ValueError(f"invalid filter {text!r}: no value after {op}")
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"/":
                value = value[1:-1].replace("\\" + value[0], value[0])
            if op == "~=":
                try:
                    re.compile(value)
                except re.error as err:
                    raise ValueError(f"invalid filter {text!r}: {err}") from None
            selectors.append(FilterSelector(field, op, value))
            pos = m.end()
            if m.group(4) == "," and pos == len(text):
                raise ValueError(f"invalid filter {text!r}: nothing after ','")
        if not selectors:
            raise ValueError(f"invalid filter {text!r}")
        out.append(selectors)
    return out


def filter_matches(parsed: list[list[FilterSelector]],
                   lookup: Callable[[str], tuple[str, bool]]) -> bool:
    """Whether a record matches ``parsed`` (no filter: everything does). ``lookup(field)``
    gives the field's value and whether the record has it."""
    if not parsed:
        return True
    for selectors in parsed:
        ok = True
        for sel in selectors:
            value, present = lookup(sel.field)
            if sel.op == "":
                ok = present
            elif sel.op == "==":
                ok = present and value == sel.value
            elif sel.op == "!=":
                ok = not present or value != sel.value
            else:
                ok = present and re.search(sel.value, value) is not None
            if not ok:
                break
        if ok:
            return True
    return False
