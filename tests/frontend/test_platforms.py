"""Platform strings parse, normalise, format and match like containerd's."""

from __future__ import annotations

import platform as host

import pytest

from buildkit_py import platforms
from buildkit_py.errors import UsageError
from buildkit_py.gostrings import go_quote
from buildkit_py.platforms import (
    Platform,
    as_platform,
    best_match,
    compatible_platforms,
    host_platform,
    match_rank,
    matches,
    parse_platform,
    parse_platform_list,
)

# (input, expected os/arch/variant, os version)
PARSE_CASES = [
    ("linux/amd64", "linux/amd64", ""),
    ("linux/x86_64", "linux/amd64", ""),
    ("linux/x86-64", "linux/amd64", ""),
    ("linux/amd64/v1", "linux/amd64", ""),
    ("linux/amd64/v3", "linux/amd64/v3", ""),
    ("linux/arm64", "linux/arm64", ""),
    ("linux/arm64/v8", "linux/arm64", ""),
    ("linux/aarch64", "linux/arm64", ""),
    ("linux/arm64/v9.0", "linux/arm64/v9", ""),
    ("linux/arm", "linux/arm/v7", ""),
    ("linux/arm/7", "linux/arm/v7", ""),
    ("linux/arm/6", "linux/arm/v6", ""),
    ("linux/arm/v5", "linux/arm/v5", ""),
    ("linux/armhf", "linux/arm/v7", ""),
    ("linux/armel", "linux/arm/v6", ""),
    ("linux/i386", "linux/386", ""),
    ("linux/386", "linux/386", ""),
    ("linux/ppc64le", "linux/ppc64le", ""),
    ("linux/s390x", "linux/s390x", ""),
    ("linux/riscv64", "linux/riscv64", ""),
    ("LINUX/AMD64", "linux/amd64", ""),
    ("macos/arm64", "darwin/arm64", ""),
    ("windows(10.0.17763)/amd64", "windows/amd64", "10.0.17763"),
    (" linux/arm64 ", "linux/arm64", ""),
    # a lone architecture gets the host OS (linux here)
    ("arm64", "linux/arm64", ""),
    ("aarch64", "linux/arm64", ""),
    ("armhf", "linux/arm/v7", ""),
    ("x86_64", "linux/amd64", ""),
]


@pytest.mark.parametrize(("spec", "expected", "os_version"), PARSE_CASES,
                         ids=[c[0] for c in PARSE_CASES])
def test_parse_platform_normalises_like_containerd(
    spec: str, expected: str, os_version: str
) -> None:
    p = parse_platform(spec)
    assert p.format() == expected
    assert str(p) == expected
    assert p.os_version == os_version


@pytest.mark.parametrize("spec", ["", "local", "  "])
def test_empty_and_local_mean_the_host(spec: str) -> None:
    assert parse_platform(spec) == host_platform()


def test_lone_os_gets_the_host_architecture() -> None:
    h = host_platform()
    assert parse_platform("linux") == Platform("linux", h.architecture, h.variant)


BAD_SPECS = ["linux/arm/v7/extra", "linux/*", "foo", "linux/a b", "/amd64", "linux/",
             "windows(10/amd64", "lin ux/amd64"]


@pytest.mark.parametrize("spec", BAD_SPECS)
def test_bad_platform_is_a_usage_error_with_a_hint(spec: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_platform(spec)
    assert go_quote(spec) in info.value.message  # containerd's wording, as buildx prints it
    assert info.value.message.endswith(": invalid argument")
    assert info.value.hint and "linux/arm64" in info.value.hint


FORMAT_CASES = [
    (Platform("linux", "arm", "v7"), "linux/arm/v7", "linux/arm/v7", "linux_arm_v7"),
    (Platform("linux", "arm64"), "linux/arm64", "linux/arm64", "linux_arm64"),
    (Platform("windows", "amd64", "", "10.0.17763"), "windows/amd64",
     "windows(10.0.17763)/amd64", "windows_amd64"),
]


@pytest.mark.parametrize(("p", "short", "full", "path"), FORMAT_CASES,
                         ids=[c[1] for c in FORMAT_CASES])
def test_format_format_all_and_for_path(p: Platform, short: str, full: str, path: str) -> None:
    assert p.format() == short
    assert p.format_all() == full
    assert p.for_path() == path


def test_platform_is_hashable_and_frozen() -> None:
    p = parse_platform("linux/arm64")
    assert {p, parse_platform("linux/aarch64")} == {p}
    with pytest.raises(AttributeError):
        p.os = "windows"  # type: ignore[misc]


def test_parse_platform_list_dedups_after_normalising_and_keeps_order() -> None:
    got = parse_platform_list("linux/arm64,linux/amd64, linux/aarch64,linux/x86_64,,linux/arm")
    assert [p.format() for p in got] == ["linux/arm64", "linux/amd64", "linux/arm/v7"]
    assert parse_platform_list(["linux/amd64", "linux/arm64,linux/amd64"]) == [
        Platform("linux", "amd64"), Platform("linux", "arm64")]
    assert parse_platform_list("") == []


def test_parse_platform_list_reports_the_bad_item() -> None:
    with pytest.raises(UsageError, match='"linux/bogus/x/y"'):
        parse_platform_list("linux/amd64,linux/bogus/x/y")


HOST_CASES = [
    ("x86_64", "linux/amd64"),
    ("aarch64", "linux/arm64"),
    ("armv7l", "linux/arm/v7"),
    ("armv6l", "linux/arm/v6"),
    ("i686", "linux/386"),
    ("ppc64le", "linux/ppc64le"),
    ("s390x", "linux/s390x"),
    ("riscv64", "linux/riscv64"),
]


@pytest.mark.parametrize(("machine", "expected"), HOST_CASES)
def test_host_platform_from_machine_name(
    monkeypatch: pytest.MonkeyPatch, machine: str, expected: str
) -> None:
    monkeypatch.setattr(host, "machine", lambda: machine)
    monkeypatch.setattr(host, "system", lambda: "Linux")
    platforms.host_platform.cache_clear()
    try:
        assert host_platform().format() == expected
    finally:
        platforms.host_platform.cache_clear()


# (name, variant, canonical arch and variant): containerd's spellings first, then
# machine names containerd leaves alone
ARCH_CASES = [
    ("armhf", "", ("arm", "v7")),
    ("armel", "", ("arm", "v6")),
    ("arm", "", ("arm", "v7")),
    ("ARM", "6", ("arm", "v6")),
    ("aarch64", "v8", ("arm64", "")),
    ("arm64", "v8.2", ("arm64", "v8.2")),
    ("x86_64", "", ("amd64", "")),
    ("x86-64", "v1", ("amd64", "")),
    ("i386", "", ("386", "")),
    ("i686", "", ("386", "")),
    ("armv7l", "", ("arm", "v7")),
    ("armv6l", "", ("arm", "v6")),
    ("ppc64el", "", ("ppc64le", "")),
    ("loongarch64", "", ("loong64", "")),
    ("mips64le", "", ("mips64le", "")),
    ("sparcv9", "x", ("sparcv9", "x")),
]


@pytest.mark.parametrize(("name", "variant", "expected"), ARCH_CASES)
def test_arch_of_spells_every_architecture_name_canonically(
    name: str, variant: str, expected: tuple[str, str]
) -> None:
    assert platforms.arch_of(name, variant) == expected


# (spec, candidate, rank or None)
RANK_CASES = [
    ("linux/amd64", "linux/amd64", 0),
    ("linux/amd64", "linux/x86_64", 0),
    ("linux/amd64", "linux/arm64", None),
    ("linux/amd64", "windows/amd64", None),
    ("linux/amd64", "linux/amd64/v2", None),
    ("linux/amd64/v3", "linux/amd64/v2", 1),
    ("linux/amd64/v3", "linux/amd64", 2),
    ("linux/amd64", "linux/386", None),
    ("linux/arm64", "linux/arm64/v8", 0),
    ("linux/arm64", "linux/arm/v7", None),
    ("linux/arm/v7", "linux/arm/v7", 0),
    ("linux/arm/v7", "linux/arm/v6", 1),
    ("linux/arm/v7", "linux/arm/v5", 2),
    ("linux/arm/v7", "linux/arm/v8", None),
    ("linux/arm/v8", "linux/arm", 1),
    ("linux/arm/v6", "linux/arm/v7", None),
    # arm64 sub-variants (containerd platformVector, same architecture only)
    ("linux/arm64", "linux/arm64/v8.1", None),
    ("linux/arm64", "linux/arm/v7", None),
    ("linux/arm64/v8.2", "linux/arm64/v8.1", 1),
    ("linux/arm64/v8.2", "linux/arm64", 2),
    ("linux/arm64/v9", "linux/arm64/v8.5", 1),
    ("linux/arm64/v9", "linux/arm64/v8.6", None),
    ("linux/arm64/v9", "linux/arm64", 6),
    ("linux/arm64/v9.2", "linux/arm64/v9.1", 1),
    ("linux/arm64/v9.2", "linux/arm64/v9", 2),
    ("linux/arm64/v9.2", "linux/arm64/v8.7", 3),
    ("linux/arm64/v9.2", "linux/arm64/v8.8", None),
    ("linux/arm64/v8.2", "linux/arm64/v9", None),
]


@pytest.mark.parametrize(("spec", "cand", "rank"), RANK_CASES,
                         ids=[f"{c[0]}<-{c[1]}" for c in RANK_CASES])
def test_match_rank_prefers_exact_then_lower_variants(
    spec: str, cand: str, rank: int | None
) -> None:
    assert match_rank(parse_platform(spec), parse_platform(cand)) == rank
    assert matches(parse_platform(spec), parse_platform(cand)) is (rank is not None)


def test_match_ignores_os_version() -> None:
    spec = parse_platform("windows(10.0.17763)/amd64")
    assert matches(spec, parse_platform("windows(10.0.20348)/amd64"))


def test_match_normalises_raw_index_platforms() -> None:
    raw = Platform("linux", "aarch64", "v8")
    assert matches(parse_platform("linux/arm64"), raw)


def test_best_match_picks_exact_variant_then_first_of_equal_rank() -> None:
    index = [parse_platform(s) for s in
             ["linux/amd64", "linux/arm/v5", "linux/arm/v6", "linux/arm/v6", "linux/arm64"]]
    assert best_match(parse_platform("linux/arm/v7"), index) == 2
    assert best_match(parse_platform("linux/arm/v5"), index) == 1
    assert best_match(parse_platform("linux/arm64"), index) == 4
    assert best_match(parse_platform("linux/s390x"), index) is None


def test_best_match_skips_entries_without_a_platform() -> None:
    assert best_match(parse_platform("linux/amd64"), [None, parse_platform("linux/amd64")]) == 1
    assert best_match(parse_platform("linux/amd64"), [None]) is None


def test_as_platform_accepts_values_strings_and_none() -> None:
    p = Platform("linux", "arm64")
    assert as_platform(p) is p
    assert as_platform("linux/aarch64") == p
    assert as_platform(None) == host_platform()


JSON_CASES = [
    ({"architecture": "arm64", "os": "linux"}, Platform("linux", "arm64")),
    ({"architecture": "arm", "os": "linux", "variant": "v6"}, Platform("linux", "arm", "v6")),
    ({"architecture": "amd64", "os": "windows", "os.version": "10.0.20348.1"},
     Platform("windows", "amd64", "", "10.0.20348.1")),
]


@pytest.mark.parametrize(("data", "p"), JSON_CASES, ids=[c[1].format_all() for c in JSON_CASES])
def test_descriptor_json_round_trips(data: dict[str, str], p: Platform) -> None:
    assert Platform.from_json(data) == p
    assert p.to_json() == data
    assert list(p.to_json()) == list(data)  # image-spec field order keeps digests stable


def test_from_json_normalises_and_tolerates_missing_fields() -> None:
    raw = {"architecture": "aarch64", "os": "Linux", "variant": "v8"}
    assert Platform.from_json(raw) == Platform("linux", "arm64")
    assert Platform.from_json({"os": "linux", "architecture": "arm"}).variant == "v7"
    assert Platform.from_json({}) == Platform("", "")


def test_compatible_platforms_lists_best_first() -> None:
    got = [p.format() for p in compatible_platforms(parse_platform("linux/arm/v8"))]
    assert got == ["linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]
    assert [p.format() for p in compatible_platforms(parse_platform("linux/arm64"))] == [
        "linux/arm64"]
    got = [p.format() for p in compatible_platforms(parse_platform("linux/amd64/v3"))]
    assert got == ["linux/amd64/v3", "linux/amd64/v2", "linux/amd64"]
    got = [p.variant for p in compatible_platforms(parse_platform("linux/arm64/v9.1"))]
    assert got == ["v9.1", "v9", "v8.6", "v8.5", "v8.4", "v8.3", "v8.2", "v8.1", ""]


def test_platforms_module_imports_only_the_standard_library_errors_and_quoting() -> None:
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(platforms))
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert {m for m in imported if m.startswith("buildkit_py")} == {"buildkit_py.errors",
                                                                    "buildkit_py.gostrings"}
