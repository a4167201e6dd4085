"""Reference parsing and normalisation, as docker's distribution reference does it."""

from __future__ import annotations

import pytest

from buildkit_py.errors import UsageError
from buildkit_py.registry.reference import InvalidReferenceError, parse_reference, parse_repository

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "full", "familiar"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("user/img", "docker.io/user/img:latest", "user/img:latest"),
        ("docker.io/library/alpine:3", "docker.io/library/alpine:3", "alpine:3"),
        ("index.docker.io/library/alpine", "docker.io/library/alpine:latest", "alpine:latest"),
        ("docker.io/a/b/c:t", "docker.io/a/b/c:t", "a/b/c:t"),
        ("host:5000/a/b:tag", "host:5000/a/b:tag", "host:5000/a/b:tag"),
        ("localhost/img", "localhost/img:latest", "localhost/img:latest"),
        ("localhost:5000/img", "localhost:5000/img:latest", "localhost:5000/img:latest"),
        ("127.0.0.1:5000/x/y", "127.0.0.1:5000/x/y:latest", "127.0.0.1:5000/x/y:latest"),
        ("[::1]:5000/img:v1", "[::1]:5000/img:v1", "[::1]:5000/img:v1"),
        ("ghcr.io/o/r", "ghcr.io/o/r:latest", "ghcr.io/o/r:latest"),
        (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}"),
        (f"busybox:1@{DIGEST}", f"docker.io/library/busybox:1@{DIGEST}", f"busybox:1@{DIGEST}"),
        ("org/a-b__c.d_e", "docker.io/org/a-b__c.d_e:latest", "org/a-b__c.d_e:latest"),
    ],
)
def test_references_normalise_like_docker(text: str, full: str, familiar: str) -> None:
    ref = parse_reference(text)
    assert str(ref) == full
    assert ref.familiar == familiar
    assert str(parse_reference(full)) == full


def test_docker_hub_api_host_is_registry_1() -> None:
    ref = parse_reference("busybox")
    assert ref.domain == "docker.io"
    assert ref.api_host == "registry-1.docker.io"
    assert parse_reference("localhost:5000/x").api_host == "localhost:5000"


def test_digest_wins_over_tag_when_fetching() -> None:
    ref = parse_reference(f"alpine:3@{DIGEST}")
    assert ref.tag == "3"
    assert ref.digest == DIGEST
    assert ref.object == DIGEST
    assert parse_reference("alpine:3").object == "3"


def test_uppercase_first_component_is_a_host_like_docker() -> None:
    # docker treats a first component with uppercase letters as a registry host.
    assert parse_reference("Foo/bar").domain == "Foo"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("Busybox", "must be lowercase"),
        ("docker.io/Library/x", "must be lowercase"),
        ("a" * 64, "64-byte hexadecimal"),
        ("busybox:", "invalid tag"),
        ("busybox:-bad", "invalid tag"),
        ("busybox@sha256:abc", "invalid digest"),
        ("busybox@md5:" + "a" * 32, "unsupported algorithm"),
        ("busybox@sha256:" + "A" * 64, "lowercase hex"),
        ("a//b", "invalid reference format"),
        ("-a/b", "invalid reference format"),
        ("host:port/x", "invalid reference format"),
        ("x/" + "a" * 260, "longer than 255"),
    ],
)
def test_invalid_references_raise_usage_errors(text: str, needle: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        parse_reference(text)
    assert isinstance(info.value, UsageError)
    assert needle in info.value.message


def test_without_default_tag_a_bare_name_stays_untagged() -> None:
    ref = parse_reference("alpine", default_tag=False)
    assert ref.tag is None and ref.digest is None
    assert ref.object == "latest"


def test_with_tag_and_with_digest() -> None:
    ref = parse_reference("localhost:5000/app:1")
    assert str(ref.with_tag("2")) == "localhost:5000/app:2"
    assert str(ref.with_digest(DIGEST)) == f"localhost:5000/app:1@{DIGEST}"
    with pytest.raises(InvalidReferenceError):
        ref.with_tag("no/slash")


def test_repository_for_mount_is_relative_to_the_registry() -> None:
    assert parse_repository("team/base", domain="localhost:5000").name == "localhost:5000/team/base"
    assert parse_repository("alpine", domain="docker.io").path == "library/alpine"
    assert parse_repository("localhost:5000/base", domain="other:1").domain == "localhost:5000"
    with pytest.raises(InvalidReferenceError):
        parse_repository("base:1", domain="docker.io")
