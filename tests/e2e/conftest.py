"""End-to-end fixtures: run the real ``bkpy`` CLI against a private state root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.images import write_busybox_layout
from tests.registry.fixtures import Proxy, RegistryServer


@dataclass
class Run:
    code: int
    out: str
    err: str


Bkpy = Callable[..., Run]


def make_runner(root: Path) -> Bkpy:
    def bkpy(*args: str, cwd: Path | None = None, check: bool = True,
             env: dict[str, str] | None = None, stdin: str | None = None) -> Run:
        full_env = dict(os.environ, BKPY_ROOT=str(root), BKPY_CONFIG=str(root / "client"))
        full_env.pop("BKPY_DEBUG", None)
        if env:
            full_env.update(env)
        p = subprocess.run([sys.executable, "-m", "buildkit_py", *args], cwd=cwd,
                           env=full_env, capture_output=True, text=True, input=stdin,
                           timeout=600)
        run = Run(p.returncode, p.stdout, p.stderr)
        if check and p.returncode != 0:
            raise AssertionError(f"bkpy {' '.join(args)} exited {p.returncode}\n"
                                 f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return run

    return bkpy


@pytest.fixture(scope="session")
def busybox_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_busybox_layout(tmp_path_factory.mktemp("busybox") / "layout",
                                ("amd64", "arm64"))


@pytest.fixture(scope="session")
def shared_root(tmp_path_factory: pytest.TempPathFactory, busybox_layout: Path) -> Path:
    """A state root with ``busybox:latest`` imported, shared by tests that only read it."""
    root = tmp_path_factory.mktemp("state")
    make_runner(root)("image", "import", str(busybox_layout), "busybox:latest")
    return root


@pytest.fixture
def bkpy(shared_root: Path) -> Bkpy:
    return make_runner(shared_root)


@pytest.fixture
def fresh_bkpy(tmp_path: Path, busybox_layout: Path) -> Bkpy:
    """A private, empty state root (with busybox imported) for cache-sensitive tests."""
    run = make_runner(tmp_path / "state")
    run("image", "import", str(busybox_layout), "busybox:latest")
    return run


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A real distribution registry on loopback, one per test module."""
    server = RegistryServer(tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()


@pytest.fixture
def proxy(registry: RegistryServer) -> Iterator[Proxy]:
    """A recording, fault-injecting proxy in front of the module's registry."""
    p = Proxy(registry.host)
    yield p
    p.stop()


def builds_with_two_history_entries(bkpy: Bkpy, tmp_path: Path, count: int
                                    ) -> dict[str, str]:
    """Run ``count`` builds (build argument N = 0, 1, ...) with a builder config that keeps
    two history entries; the environment that selects that config."""
    config = tmp_path / "bkpyd.toml"
    config.write_text("[history]\nmax-entries = 2\n")
    env = {"BKPY_BUILDER_CONFIG": str(config)}
    ctx = tmp_path / "history-ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nARG N\nRUN echo $N\n")
    for n in range(count):
        bkpy("build", "--network", "none", "--build-arg", f"N={n}", str(ctx), env=env)
    return env


def history_build_args(bkpy: Bkpy, env: dict[str, str]) -> list[str]:
    """The build argument N of each history record, newest first."""
    records = json.loads(bkpy("history", "ls", "--format", "json", env=env).out)
    return [r["request"]["build_args"]["N"] for r in records]


def write_context(where: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    """A build context folder ``where/ctx``: the Dockerfile and ``files`` (name -> text)."""
    ctx = where / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        (ctx / name).write_text(text)
    return ctx
