"""The registry picks index entries with the shared platform rules (buildkit_py.platforms),
re-exported as ``buildkit_py.registry.Platform`` / ``parse_platform``."""

from __future__ import annotations

import pytest

from buildkit_py import platforms
from buildkit_py.errors import UsageError
from buildkit_py.platforms import best_match, host_platform
from buildkit_py.registry import Platform, parse_platform
from buildkit_py.registry.descriptor import Descriptor


def test_registry_re_exports_the_shared_platform_type() -> None:
    assert Platform is platforms.Platform
    assert parse_platform is platforms.parse_platform


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


@pytest.mark.parametrize("text", ["linux/", "/amd64", "a/b/c/d"])
def test_bad_platform_strings_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_platform(text)


def test_empty_platform_means_this_machine() -> None:
    assert parse_platform("") == host_platform()


def _entries(*texts: str) -> list[Platform | None]:
    return [parse_platform(t) for t in texts]


def test_exact_match_is_preferred_over_a_compatible_variant() -> None:
    entries = _entries("linux/arm/v6", "linux/arm/v7", "linux/amd64")
    assert best_match(parse_platform("linux/arm/v7"), entries) == 1


def test_arm_variants_fall_back_v7_then_v6_then_v5() -> None:
    assert best_match(parse_platform("linux/arm/v7"), _entries("linux/arm/v5", "linux/arm/v6")) == 1
    assert best_match(parse_platform("linux/arm/v7"), _entries("linux/arm/v5")) == 0
    assert best_match(parse_platform("linux/arm/v6"), _entries("linux/arm/v7")) is None
    assert best_match(parse_platform("linux/arm/v8"), _entries("linux/arm/v6", "linux/arm/v7")) == 1


def test_arm64_without_variant_means_v8() -> None:
    entries = [Platform.from_json({"os": "linux", "architecture": "arm64", "variant": "v8"})]
    assert best_match(parse_platform("linux/arm64"), entries) == 0
    assert best_match(parse_platform("linux/arm64/v8"), _entries("linux/arm64")) == 0


def test_arm64_sub_variants_fall_back_like_containerd() -> None:
    entries = _entries("linux/arm64", "linux/arm64/v8.2", "linux/arm64/v8.6")
    assert best_match(parse_platform("linux/arm64/v8.4"), entries) == 1
    # v9.0 branched from v8.5: it runs v8.5 and below, not v8.6
    assert best_match(parse_platform("linux/arm64/v9"), entries) == 1
    assert best_match(parse_platform("linux/arm64/v9.1"), entries) == 2


def test_os_and_architecture_must_match_exactly() -> None:
    entries = _entries("windows/amd64", "linux/386", "linux/arm64", "linux/arm/v7")
    assert best_match(parse_platform("linux/amd64"), entries) is None
    assert best_match(parse_platform("linux/arm64"), entries[3:]) is None


def test_first_of_equal_matches_wins_and_missing_platforms_are_skipped() -> None:
    entries: list[Platform | None] = [None, *_entries("linux/amd64", "linux/amd64")]
    assert best_match(parse_platform("linux/amd64"), entries) == 1


def test_amd64_v3_runs_v2_images() -> None:
    entries = _entries("linux/amd64/v2", "linux/amd64/v4")
    assert best_match(parse_platform("linux/amd64/v3"), entries) == 0
    assert best_match(parse_platform("linux/amd64"), entries) is None


def test_host_platform_is_normalised() -> None:
    plat = host_platform()
    assert plat == parse_platform(str(plat))
    assert plat.os == "linux"


def test_descriptor_platform_json_round_trips_normalised() -> None:
    raw = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + "a" * 64,
        "size": 10,
        "platform": {"architecture": "aarch64", "os": "linux", "variant": "v8"},
    }
    desc = Descriptor.from_json(raw)
    assert desc.platform == Platform("linux", "arm64")
    assert desc.to_json()["platform"] == {"architecture": "arm64", "os": "linux"}
    win = Platform.from_json({"architecture": "amd64", "os": "windows",
                              "os.version": "10.0.17763.1"})
    assert win.os_version == "10.0.17763.1"
    assert win.to_json() == {"architecture": "amd64", "os": "windows",
                             "os.version": "10.0.17763.1"}
