"""Real ``bkpyd`` processes on unix sockets in tmp and on 127.0.0.1, and the real CLI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.images import write_busybox_layout


@dataclass
class Run:
    code: int
    out: str
    err: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_bkpy(*args: str, env: dict[str, str], check: bool = True, cwd: Path | None = None,
             timeout: float = 300) -> Run:
    full = dict(os.environ)
    for key in ("BKPY_DEBUG", "BKPY_BUILDER", "SOURCE_DATE_EPOCH"):
        full.pop(key, None)
    full.update(env)
    p = subprocess.run([sys.executable, "-m", "buildkit_py", *args], env=full, cwd=cwd,
                       capture_output=True, text=True, timeout=timeout)
    run = Run(p.returncode, p.stdout, p.stderr)
    if check and p.returncode != 0:
        raise AssertionError(f"bkpy {' '.join(args)} exited {p.returncode}\n"
                             f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return run


@dataclass
class Daemon:
    """One bkpyd process; ``endpoint`` is what clients dial."""

    root: Path
    endpoint: str
    args: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    def start(self, tls: object | None = None) -> Daemon:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "buildkit_py.control.daemon", "--root", str(self.root),
             *self.args], stdout=out, stderr=out, stdin=subprocess.DEVNULL,
            env={**os.environ, **self.extra_env})
        out.close()
        self.wait_ready(tls)
        return self

    def wait_ready(self, tls: object | None = None, timeout: float = 30) -> None:
        from buildkit_py.client.remote import RemoteClient

        client = RemoteClient(self.endpoint, tls)  # type: ignore[arg-type]
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise AssertionError(f"bkpyd exited {self.proc.returncode}:\n"
                                         + self.log.read_text())
                if client.ping(timeout=0.5):
                    return
                time.sleep(0.1)
        finally:
            client.close()
        raise AssertionError("bkpyd did not become ready:\n" + self.log.read_text())

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="session")
def busybox_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_busybox_layout(tmp_path_factory.mktemp("busybox") / "layout")


def import_busybox(root: Path, layout: Path) -> None:
    run_bkpy("image", "import", str(layout), "busybox:latest", env={"BKPY_ROOT": str(root)})


MakeDaemon = Callable[..., Daemon]


@pytest.fixture
def make_daemon(tmp_path: Path, busybox_layout: Path) -> Iterator[MakeDaemon]:
    """Start daemons on a unix socket in tmp (or the given --addr args); stop them after."""
    started: list[Daemon] = []

    def make(name: str = "d", args: list[str] | None = None, endpoint: str | None = None,
             tls: object | None = None, busybox: bool = True) -> Daemon:
        root = tmp_path / f"{name}-root"
        if busybox and not root.exists():
            import_busybox(root, busybox_layout)
        if args is None:
            sock = tmp_path / f"{name}.sock"
            args = ["--addr", f"unix://{sock}"]
            endpoint = f"unix://{sock}"
        assert endpoint is not None
        d = Daemon(root, endpoint, args, tmp_path / f"{name}.log")
        started.append(d)
        return d.start(tls)

    yield make
    for d in started:
        if d.proc is not None and d.proc.poll() is None:
            d.stop()


def client_env(tmp_path: Path, daemon: Daemon | None = None) -> dict[str, str]:
    """A private client config; with a daemon, a remote builder "d" selected for it."""
    env = {"BKPY_CONFIG": str(tmp_path / "client"), "BKPY_ROOT": str(tmp_path / "embedded")}
    if daemon is not None:
        run_bkpy("builder", "create", "--name", "d", "--driver", "remote", daemon.endpoint,
                 "--use", env=env)
    return env


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory: pytest.TempPathFactory,
                  busybox_layout: Path) -> Iterator[Daemon]:
    """One daemon (busybox imported) for the tests of a module that do not restart it."""
    base = tmp_path_factory.mktemp("shared-daemon")
    import_busybox(base / "root", busybox_layout)
    # It may grant security.insecure (not network.host): test_entitlements_travel_to_the_daemon.
    d = Daemon(base / "root", f"unix://{base}/d.sock",
               ["--addr", f"unix://{base}/d.sock",
                "--allow-insecure-entitlement", "security.insecure"], base / "d.log").start()
    yield d
    d.stop()
