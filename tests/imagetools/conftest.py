"""Fixtures: a real registry, images pushed to it, and the real ``bkpy`` CLI."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from buildkit_py.content import ContentStore
from buildkit_py.platforms import Platform
from buildkit_py.registry import Descriptor, RegistryClient, StaticCredentials
from tests.e2e.conftest import Bkpy, Run, make_runner
from tests.registry.fixtures import (
    FAST_RETRY,
    BuiltImage,
    Proxy,
    RegistryServer,
    make_image,
    make_index,
)


@dataclass
class Pushed:
    """Images pushed once per module: two single-platform repos and an index of both."""

    registry: RegistryServer
    amd64: BuiltImage
    arm64: BuiltImage
    index: Descriptor

    def ref(self, repo: str) -> str:
        return f"{self.registry.host}/{repo}"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = RegistryServer(tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pushed(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> Pushed:
    with ContentStore(tmp_path_factory.mktemp("source-store")) as store, \
            RegistryClient(credentials=StaticCredentials({}), retry=FAST_RETRY) as client:
        amd64 = make_image(store, platform=Platform("linux", "amd64"))
        arm64 = make_image(store, platform=Platform("linux", "arm64"))
        index = make_index(store, [amd64, arm64])
        client.push(f"{registry.host}/src/amd64:1", store, amd64.manifest)
        client.push(f"{registry.host}/src/arm64:1", store, arm64.manifest)
        client.push(f"{registry.host}/src/multi:1", store, index)
    return Pushed(registry, amd64, arm64, index)


@pytest.fixture
def bkpy(tmp_path: Path) -> Bkpy:
    """``bkpy`` with a private state root and an empty docker config (no credentials)."""
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    run = make_runner(tmp_path / "state")

    def bkpy(*args: str, check: bool = True, env: dict[str, str] | None = None,
             cwd: Path | None = None, stdin: str | None = None) -> Run:
        full_env = {"DOCKER_CONFIG": str(docker_config), **(env or {})}
        return run(*args, check=check, env=full_env, cwd=cwd, stdin=stdin)

    return bkpy


@pytest.fixture
def make_proxy() -> Iterator[Callable[[str], Proxy]]:
    proxies: list[Proxy] = []

    def make(upstream: str) -> Proxy:
        proxy = Proxy(upstream)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()


def skopeo(*args: str, text: bool = True) -> str | bytes:
    p = subprocess.run(["skopeo", *args], capture_output=True, text=text, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


def skopeo_raw(ref: str) -> bytes:
    out = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{ref}", text=False)
    assert isinstance(out, bytes)
    return out


def skopeo_json(*args: str) -> dict[str, object]:
    out = skopeo(*args)
    assert isinstance(out, str)
    doc = json.loads(out)
    assert isinstance(doc, dict)
    return doc
