"""Docker's size and ulimit grammars (buildkit_py.units), with go-units' wording."""

from __future__ import annotations

import pytest

from buildkit_py.units import Ulimit, parse_ulimit, ram_in_bytes


@pytest.mark.parametrize(("text", "size"), [
    ("1024", 1024), ("64m", 64 << 20), ("64MiB", 64 << 20), ("1.5g", 3 << 29), ("2 KB", 2048),
])
def test_ram_in_bytes_is_binary(text: str, size: int) -> None:
    assert ram_in_bytes(text) == size


@pytest.mark.parametrize("text", ["", "abc", "1.2.3m", "-1", "5x"])
def test_ram_in_bytes_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=f"invalid size: '{text}'"):
        ram_in_bytes(text)


@pytest.mark.parametrize(("text", "want"), [
    ("nofile=1024", Ulimit("nofile", 1024, 1024)),
    ("nofile=1024:2048", Ulimit("nofile", 1024, 2048)),
    ("core=-1", Ulimit("core", -1, -1)),
    ("stack=8192:-1", Ulimit("stack", 8192, -1)),
])
def test_parse_ulimit(text: str, want: Ulimit) -> None:
    assert parse_ulimit(text) == want
    assert str(want) == f"{want.name}={want.soft}:{want.hard}"


@pytest.mark.parametrize(("text", "error"), [
    ("nofile", "invalid ulimit argument: nofile"),
    ("foo=1", "invalid ulimit type: foo"),
    ("nofile=abc", 'strconv.ParseInt: parsing "abc": invalid syntax'),
    ("nofile=abc:def", 'strconv.ParseInt: parsing "def": invalid syntax'),
    ("nofile=1:2:3", "too many limit value arguments - 1:2:3, can only have up to two"),
    ("nofile=10:5", "ulimit soft limit must be less than or equal to hard limit: 10 > 5"),
    ("nofile=-1:5", "soft: -1 (unlimited), hard: 5"),
])
def test_parse_ulimit_rejects_with_go_units_wording(text: str, error: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_ulimit(text)
    assert error in str(info.value)
