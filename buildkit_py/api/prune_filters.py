"""``prune --filter``, as buildx passes it to BuildKit and BuildKit matches cache records.

On the command line (docker's filter flag): ``KEY=VALUE``, and ``KEY!=VALUE`` /
``KEY~=VALUE`` (a regular expression). ``until`` (or its old name ``unused-for``) is a
duration and becomes the prune's keep duration; the other filters select records and all
of them must match, as buildx joins them into one containerd filter for BuildKit
(``type==regular,description~=COPY``; ``id`` always matches by expression). That string
is what travels (``PruneOptions.filters``), read with :func:`buildkit_py.units.parse_prune_filters`.

The fields of bkpy's records: ``id``, ``description``, ``type`` (``regular``,
``source.local`` for a build context's files, ``source.git.checkout``,
``exec.cachemount`` for an instance of a ``RUN --mount=type=cache``), ``inuse``;
``mutable``/``immutable`` and ``shared``/``private`` hold as for BuildKit's records
(every bkpy record is private; cache mounts are mutable, the others immutable). For
these yes/no fields an empty value or ``true`` asks for records that have it, ``false``
for those that do not (BuildKit matches ``inuse=true`` against an empty value: never).
A key BuildKit does not know, or one bkpy's records do not carry (``parents``), is
refused rather than matching nothing in silence.
"""

from __future__ import annotations

import re

from buildkit_py.config import parse_duration
from buildkit_py.errors import UsageError
from buildkit_py.units import FilterSelector, filter_matches, parse_prune_filters

FIELDS = ("id", "description", "type", "inuse", "mutable", "immutable", "shared", "private")
_FLAGS = ("inuse", "mutable", "immutable", "shared", "private")
RECORD_TYPES = ("regular", "source.local", "source.git.checkout", "exec.cachemount",
                "frontend", "internal")
_NOT_KEPT: dict[str, str] = {}  # record types bkpy has no records of, and why

ParsedFilters = list[list[FilterSelector]]


def from_flags(values: tuple[str, ...] | list[str]) -> tuple[float | None, tuple[str, ...]]:
    """``--filter`` values: the keep duration (``until``) and the record filter as one
    containerd filter string (none: an empty tuple), checked."""
    by_key: dict[str, str] = {}
    for value in values:
        name, sep, val = value.partition("=")
        if not sep:
            raise UsageError(f'invalid argument "{value}" for "--filter" flag: bad format of '
                             "filter (expected name=value)")
        name = name.strip().lower()
        if name in by_key:
            raise UsageError(f'"{name}" filter expects only one value')
        by_key[name] = val.strip()
    if "until" in by_key and "unused-for" in by_key:
        raise UsageError('conflicting filters "until" and "unused-for"')
    keep: float | None = None
    selectors: list[str] = []
    for name, val in by_key.items():
        if name in ("until", "unused-for"):
            try:
                keep = parse_duration(val)
            except (UsageError, ValueError):
                raise UsageError(f'"{name}" filter expects a duration (e.g., \'24h\')') \
                    from None
            continue
        field, op = name, "=="
        if name.endswith("!"):
            field, op = name[:-1], "!="
        elif name.endswith("~") or name == "id":
            field, op = name.rstrip("~"), "~="
        sel = _selector(field, op, val)
        check(sel)
        selectors.append(_text(sel))
    joined = (",".join(selectors),) if selectors else ()
    parse(joined)  # what the builder will read: a bad expression fails here, before asking
    return keep, joined


def _selector(field: str, op: str, value: str) -> FilterSelector:
    if field in _FLAGS and op in ("==", "!=") and value.lower() in ("", "true", "false"):
        has = (value.lower() != "false") == (op == "==")
        return FilterSelector(field, "" if has else "!=", "")  # present / absent
    return FilterSelector(field, op, value)


def _text(sel: FilterSelector) -> str:
    if not sel.op:
        return sel.field
    value = sel.value
    if re.search(r'[,"\s]', value):
        value = '"' + value.replace('"', '\\"') + '"'
    return f"{sel.field}{sel.op}{value}"


def check(sel: FilterSelector) -> None:
    """Refuse a selector bkpy cannot honour (the CLI's and the daemon's check)."""
    f = f"{sel.field}{sel.op}{sel.value}"
    if sel.field not in FIELDS:
        if sel.field == "parents":
            raise UsageError('prune filter "parents" is not supported: bkpy\'s cache records '
                             "do not name their parents")
        raise UsageError(f'unknown prune filter "{sel.field}"',
                         hint=f"filters: until, {', '.join(FIELDS)}")
    if sel.field == "type" and sel.op in ("==", "!="):
        if sel.value not in RECORD_TYPES:
            raise UsageError(f'prune filter {f}: unknown record type "{sel.value}"',
                             hint=f"types: {', '.join(RECORD_TYPES)}")
        if sel.value in _NOT_KEPT:
            raise UsageError(f"prune filter {f}: {_NOT_KEPT[sel.value]}")
    if sel.field in _FLAGS and sel.value:
        raise UsageError(f"prune filter {f}: {sel.field} is true or false")


def parse(filters: tuple[str, ...] | list[str]) -> ParsedFilters:
    """``PruneOptions.filters`` read and checked (the daemon trusts no client)."""
    try:
        parsed = parse_prune_filters(filters)
    except ValueError as err:
        raise UsageError(f"prune filter: {err}") from None
    for selectors in parsed:
        for sel in selectors:
            check(sel)
    return parsed


def matches(parsed: ParsedFilters, *, kind: str, result_id: str, description: str,
            in_use: bool) -> bool:
    """Whether a record of type ``kind`` is selected (no filter: every record)."""
    fields = {"id": result_id, "description": description, "type": kind}
    mutable = kind == "exec.cachemount"  # BuildKit's cache mounts are mutable refs
    flags = {"inuse": in_use, "mutable": mutable, "immutable": not mutable, "shared": False,
             "private": True}

    def lookup(field: str) -> tuple[str, bool]:
        if field in flags:
            return "", flags[field]
        value = fields.get(field, "")
        return value, bool(value)

    return filter_matches(parsed, lookup)
