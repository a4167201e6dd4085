"""Ops carry pb.Platform messages built with the shared platform rules (buildkit_py.platforms)."""

from __future__ import annotations

import pytest

from buildkit_py import llb, platforms
from buildkit_py.errors import UserError
from buildkit_py.llb import ops_pb2
from buildkit_py.llb.platform import from_pb, to_pb, to_platform
from buildkit_py.platforms import Platform


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("linux/amd64", ("linux", "amd64", "", "")),
        ("linux/x86_64", ("linux", "amd64", "", "")),
        ("linux/aarch64", ("linux", "arm64", "", "")),
        ("linux/arm64/8", ("linux", "arm64", "", "")),
        ("linux/arm", ("linux", "arm", "v7", "")),
        ("linux/arm/7", ("linux", "arm", "v7", "")),
        ("linux/armel", ("linux", "arm", "v6", "")),
        ("linux/i386", ("linux", "386", "", "")),
        ("windows(10.0.17763)/amd64", ("windows", "amd64", "", "10.0.17763")),
    ],
)
def test_parse_platform_normalises_like_the_rest_of_the_builder(
    spec: str, want: tuple[str, str, str, str]
) -> None:
    msg = llb.parse_platform(spec)
    assert (msg.os, msg.architecture, msg.variant, msg.os_version) == want
    assert from_pb(msg) == platforms.parse_platform(spec)


@pytest.mark.parametrize("spec", ["linux", "arm64", "", "local", "linux/arm/v7/x", "linux/a b"])
def test_op_platforms_need_an_explicit_os_and_architecture(spec: str) -> None:
    with pytest.raises(UserError, match="invalid platform") as info:
        llb.parse_platform(spec)
    assert isinstance(info.value, llb.LLBError)
    assert info.value.hint and "linux/amd64" in info.value.hint


def test_message_conversion_round_trips() -> None:
    p = Platform("windows", "amd64", "", "10.0.20348")
    assert from_pb(to_pb(p)) == p
    assert llb.format_platform(to_pb(Platform("linux", "arm", "v7"))) == "linux/arm/v7"


def test_host_platform_message_is_the_shared_host_platform() -> None:
    assert from_pb(llb.host_platform()) == platforms.host_platform()


def test_states_accept_shared_platform_values_with_the_same_digest() -> None:
    by_value = llb.image("alpine", platform=Platform("linux", "arm64")).marshal()
    by_text = llb.image("alpine", platform="linux/aarch64").marshal()
    assert by_value.head_digest == by_text.head_digest
    st = llb.scratch().platform(Platform("linux", "arm", "v6"))
    assert llb.format_platform(st.get_platform() or ops_pb2.Platform()) == "linux/arm/v6"


def test_to_platform_copies_messages() -> None:
    msg = llb.parse_platform("linux/amd64")
    copy = to_platform(msg)
    copy.architecture = "arm64"
    assert msg.architecture == "amd64"
