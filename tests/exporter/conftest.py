"""Fixtures: the real ``bkpy`` CLI on a private state root, and a real registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Bkpy, make_runner
from tests.images import write_busybox_layout
from tests.registry.fixtures import RegistryServer


@pytest.fixture(scope="module")
def bkpy(tmp_path_factory: pytest.TempPathFactory) -> Bkpy:
    layout = write_busybox_layout(tmp_path_factory.mktemp("busybox") / "layout", ("amd64",))
    run = make_runner(tmp_path_factory.mktemp("state"))
    run("image", "import", str(layout), "busybox:latest")
    return run


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = RegistryServer(tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    c = tmp_path / "ctx"
    c.mkdir()
    (c / "Dockerfile").write_text("FROM busybox\nCOPY app.txt /app.txt\nCOPY sub /sub\n")
    (c / "app.txt").write_text("app\n")
    (c / "sub").mkdir()
    (c / "sub" / "data").write_bytes(b"x" * 100_000)
    return c
