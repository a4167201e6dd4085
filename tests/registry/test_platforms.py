"""Platform parsing and containerd-style selection from an index."""

from __future__ import annotations

import pytest

from buildkit_py.errors import UsageError
from buildkit_py.registry.platforms import Platform, choose, default_platform, parse_platform


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("linux/amd64", "linux/amd64"),
        ("linux/x86_64", "linux/amd64"),
        ("linux/amd64/v1", "linux/amd64"),
        ("linux/amd64/v3", "linux/amd64/v3"),
        ("linux/aarch64", "linux/arm64"),
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/armhf", "linux/arm/v7"),
        ("linux/armel", "linux/arm/v6"),
        ("Linux/ARM64", "linux/arm64"),
        ("arm64", "linux/arm64"),
    ],
)
def test_platform_strings_normalise(text: str, want: str) -> None:
    assert str(parse_platform(text)) == want


@pytest.mark.parametrize("text", ["", "linux/", "/amd64", "a/b/c/d"])
def test_bad_platform_strings_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_platform(text)


def _entries(*texts: str) -> list[Platform | None]:
    return [parse_platform(t) for t in texts]


def test_exact_match_is_preferred_over_a_compatible_variant() -> None:
    entries = _entries("linux/arm/v6", "linux/arm/v7", "linux/amd64")
    assert choose(parse_platform("linux/arm/v7"), entries) == 1


def test_arm_variants_fall_back_v7_then_v6_then_v5() -> None:
    assert choose(parse_platform("linux/arm/v7"), _entries("linux/arm/v5", "linux/arm/v6")) == 1
    assert choose(parse_platform("linux/arm/v7"), _entries("linux/arm/v5")) == 0
    assert choose(parse_platform("linux/arm/v6"), _entries("linux/arm/v7")) is None
    assert choose(parse_platform("linux/arm/v8"), _entries("linux/arm/v6", "linux/arm/v7")) == 1


def test_arm64_without_variant_means_v8() -> None:
    entries = [Platform.from_json({"os": "linux", "architecture": "arm64", "variant": "v8"})]
    assert choose(parse_platform("linux/arm64"), entries) == 0
    assert choose(parse_platform("linux/arm64/v8"), _entries("linux/arm64")) == 0


def test_os_and_architecture_must_match_exactly() -> None:
    entries = _entries("windows/amd64", "linux/386", "linux/arm64")
    assert choose(parse_platform("linux/amd64"), entries) is None


def test_first_of_equal_matches_wins_and_missing_platforms_are_skipped() -> None:
    entries: list[Platform | None] = [None, *_entries("linux/amd64", "linux/amd64")]
    assert choose(parse_platform("linux/amd64"), entries) == 1


def test_amd64_v3_runs_v2_images() -> None:
    entries = _entries("linux/amd64/v2", "linux/amd64/v4")
    assert choose(parse_platform("linux/amd64/v3"), entries) == 0
    assert choose(parse_platform("linux/amd64"), entries) is None


def test_default_platform_is_normalised() -> None:
    plat = default_platform()
    assert plat == parse_platform(str(plat))
    assert plat.os == "linux"
