"""Per-host settings: which scheme, TLS checks and mirrors a registry name gets."""

from __future__ import annotations

import pytest

from buildkit_py.errors import UsageError
from buildkit_py.registry.hosts import RegistryHostConfig, RegistryHosts, is_loopback_host


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("localhost", True), ("localhost:5000", True), ("127.0.0.1:5000", True),
     ("127.1.2.3", True), ("[::1]:5000", True), ("::1", True), ("10.0.0.1:5000", False),
     ("ghcr.io", False), ("localhost.example:5000", False)],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_loopback_registries_default_to_plain_http_and_others_to_https() -> None:
    hosts = RegistryHosts()
    assert hosts.endpoint("localhost:5000").base_url == "http://localhost:5000"
    assert hosts.endpoint("[::1]:5000").base_url == "http://[::1]:5000"
    assert hosts.endpoint("ghcr.io").base_url == "https://ghcr.io"
    assert hosts.endpoint("docker.io").base_url == "https://registry-1.docker.io"


def test_host_settings_choose_scheme_and_tls_checks() -> None:
    hosts = RegistryHosts({
        "reg.example:5000": {"http": True},
        "insecure.example": RegistryHostConfig(insecure=True),
        "both.example": {"http": True, "insecure": True},
        "localhost:5000": {"http": False, "ca": "/etc/ca.pem"},
    })
    assert hosts.endpoint("reg.example:5000").scheme == "http"
    insecure = hosts.endpoint("insecure.example")
    assert (insecure.scheme, insecure.verify_tls) == ("https", False)
    both = hosts.endpoint("both.example")
    assert (both.scheme, both.http_fallback) == ("https", True)
    local = hosts.endpoint("localhost:5000")
    assert (local.scheme, local.ca) == ("https", ("/etc/ca.pem",))


def test_mirrors_come_first_with_their_own_settings_and_path_prefix() -> None:
    hosts = RegistryHosts({
        "docker.io": {"mirrors": ["mirror.local:5000", "harbor.example/proxy.docker.io",
                                  "http://plain.example"]},
        "mirror.local:5000": {"http": True},
    })
    eps = hosts.pull_endpoints("docker.io")
    assert [e.repo_url("library/alpine") for e in eps] == [
        "http://mirror.local:5000/v2/library/alpine",
        "https://harbor.example/v2/proxy.docker.io/library/alpine",
        "http://plain.example/v2/library/alpine",
        "https://registry-1.docker.io/v2/library/alpine",
    ]
    assert [e.is_mirror for e in eps] == [True, True, True, False]
    assert eps[1].repo_path("library/alpine") == "proxy.docker.io/library/alpine"
    assert hosts.push_endpoint("docker.io").host == "registry-1.docker.io"


def test_index_docker_io_settings_apply_to_docker_hub() -> None:
    hosts = RegistryHosts({"https://index.docker.io/v1/": {"mirrors": ["m.example"]}})
    assert hosts.pull_endpoints("docker.io")[0].host == "m.example"


def test_unknown_or_malformed_host_options_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown registry host option"):
        RegistryHosts({"x.example": {"htp": True}})
    with pytest.raises(UsageError, match="list of strings"):
        RegistryHosts({"x.example": {"mirrors": [1]}})
