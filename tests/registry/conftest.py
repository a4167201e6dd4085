"""Fixtures: a real distribution registry per session, and factories for special ones."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from buildkit_py.content import ContentStore
from buildkit_py.registry import RegistryClient, StaticCredentials
from tests.registry.fixtures import FAST_RETRY, Proxy, RegistryServer


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = RegistryServer(tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()


@pytest.fixture
def make_registry(tmp_path: Path) -> Iterator[Callable[..., RegistryServer]]:
    servers: list[RegistryServer] = []

    def make(**kw: Any) -> RegistryServer:
        root = tmp_path / f"registry{len(servers)}"
        root.mkdir()
        server = RegistryServer(root, **kw)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


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


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ContentStore]:
    with ContentStore(tmp_path / "store") as s:
        yield s


@pytest.fixture
def other_store(tmp_path: Path) -> Iterator[ContentStore]:
    with ContentStore(tmp_path / "other-store") as s:
        yield s


@pytest.fixture
def client() -> Iterator[RegistryClient]:
    with RegistryClient(credentials=StaticCredentials({}), retry=FAST_RETRY) as c:
        yield c
