"""``(did you mean X?)`` suggestions worded and chosen as BuildKit's util/suggest does."""

from __future__ import annotations

from collections.abc import Iterable


def _distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute: cost 1 each)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _match_case(value: str, orig: str) -> str:
    if orig == orig.lower():
        return value.lower()
    if orig == orig.upper():
        return value.upper()
    return value


def search(value: str, options: Iterable[str], *, case_sensitive: bool) -> str | None:
    """The closest option less than 3 edits away; None when ``value`` is an option itself
    (the error is then about something else) or nothing is that close."""
    val = value if case_sensitive else value.lower()
    match: str | None = None
    best = 3
    for opt in options:
        cmp = opt if case_sensitive else opt.lower()
        if cmp == val:
            return None
        d = _distance(val, cmp)
        if d < best:
            match = cmp if case_sensitive else _match_case(cmp, value)
            best = d
    return match


def suggest(message: str, value: str, options: Iterable[str], *, case_sensitive: bool) -> str:
    """``message`` with `` (did you mean X?)`` when an option is close to ``value``."""
    match = search(value, options, case_sensitive=case_sensitive)
    return f"{message} (did you mean {match}?)" if match else message
