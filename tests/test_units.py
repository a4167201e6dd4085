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


def test_go_units_printing() -> None:
    from buildkit_py.units import bytes_size, human_duration, human_size

    # go-units HumanSize / BytesSize: four significant digits
    assert [human_size(n) for n in (0, 4, 4096, 307200, 15_610_000, 999_950, 2.5e12)] == [
        "0B", "4B", "4.096kB", "307.2kB", "15.61MB", "1000kB", "2.5TB"]
    assert [bytes_size(n) for n in (512, 1536, 512 * 2**20)] == ["512B", "1.5KiB", "512MiB"]
    # go-units HumanDuration, as buildx's "Last used: ... ago"
    cases = {0.4: "Less than a second", 1: "1 second", 46: "46 seconds",
             90: "About a minute", 150: "2 minutes", 3600: "About an hour",
             2 * 3600 + 1790: "2 hours", 3 * 86400: "3 days", 20 * 86400: "2 weeks",
             90 * 86400: "3 months", 800 * 86400: "2 years"}
    assert {s: human_duration(s) for s in cases} == cases
