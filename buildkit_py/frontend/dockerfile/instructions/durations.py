"""Go's ``time.ParseDuration``, for HEALTHCHECK options (results in nanoseconds)."""

from __future__ import annotations

import re

_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_PART = re.compile(r"(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)?")
_MAX = (1 << 63) - 1


def parse_go_duration(text: str) -> int:
    """Nanoseconds for a Go duration such as ``1m30s``, ``1.5h`` or ``-2ms``.

    Raises ValueError with Go's wording for malformed input.
    """
    original = text
    if not text:
        raise ValueError(f'time: invalid duration "{original}"')
    negative = text[0] == "-"
    if text[0] in "+-":
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise ValueError(f'time: invalid duration "{original}"')
    total = 0
    pos = 0
    while pos < len(text):
        m = _PART.match(text, pos)
        assert m is not None
        whole, frac, unit = m.group(1), m.group(2), m.group(3)
        if not whole and not frac:
            raise ValueError(f'time: invalid duration "{original}"')
        if unit is None:
            raise ValueError(f'time: missing unit in duration "{original}"')
        scale = _UNITS[unit]
        value = int(whole or "0") * scale
        if frac:
            value += int(frac) * scale // (10 ** len(frac))
        total += value
        if total > _MAX:
            raise ValueError(f'time: invalid duration "{original}"')
        pos = m.end()
    return -total if negative else total


def format_go_duration(ns: int) -> str:
    """Go's ``Duration.String`` for whole seconds and simpler values (``1m30s``, ``500ms``)."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                value = ns / size
                return f"{sign}{value:g}{unit}"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = rest / 1_000_000_000
    out = sign
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return out + f"{seconds:g}s"
