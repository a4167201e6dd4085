"""``bkpy server``: commands handed to the warm server behave exactly as run locally."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildkit_py.cli.autostart import log_path
from tests.e2e.conftest import (
    Bkpy,
    Run,
    builds_with_two_history_entries,
    history_build_args,
    make_runner,
)
from tests.images import write_busybox_layout

SERVER_MODULE = "buildkit_py.cli.cmdserver"


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_busybox_layout(tmp_path_factory.mktemp("bb") / "layout", ("amd64",))


def _env(root: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, BKPY_ROOT=str(root), BKPY_CONFIG=str(root / "client"), **extra)
    env.pop("BKPY_DEBUG", None)
    env.pop("BKPY_NO_SERVER", None)
    return env


def _socket(root: Path) -> str:
    out = subprocess.run([sys.executable, "-c",
                          "from buildkit_py.cli.launch import socket_path; print(socket_path())"],
                         env=_env(root), capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _served(root: Path) -> list[str]:
    try:
        text = Path(log_path(_socket(root))).read_text()
    except FileNotFoundError:
        return []
    return [line.split(": ", 1)[1] for line in text.splitlines() if ": bkpy " in line]


@pytest.fixture
def served(tmp_path: Path, layout: Path) -> Iterator[tuple[Path, Bkpy]]:
    root = tmp_path / "state"
    local = make_runner(root)  # BKPY_NO_SERVER=1, as the whole suite (tests/conftest.py)
    local("image", "import", str(layout), "busybox:latest")
    started = local("server", "start", "--idle-timeout", "0")
    assert "started" in started.out, started.out + started.err

    def run(*args: str, env: dict[str, str] | None = None, **kwargs: object) -> Run:
        return local(*args, env={"BKPY_NO_SERVER": "0", **(env or {})}, **kwargs)

    try:
        yield root, run
    finally:
        local("server", "stop", check=False)
        Path(log_path(_socket(root))).unlink(missing_ok=True)


def _ctx(tmp_path: Path, dockerfile: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx


def test_build_through_the_server_uses_callers_cwd_env_and_stdio(
        served: tuple[Path, Bkpy], tmp_path: Path) -> None:
    root, bkpy = served
    ctx = _ctx(tmp_path, "FROM busybox\nARG FOO\nRUN echo \"$FOO\" > /foo\n"
                         "FROM scratch\nCOPY --from=0 /foo /foo\n")
    r = bkpy("build", "--progress", "plain", "--build-arg", "FOO", "-o", "type=local,dest=out",
             ".", cwd=ctx, env={"FOO": "from-the-callers-env"})
    assert (ctx / "out" / "foo").read_text() == "from-the-callers-env\n"
    assert "#" in r.err and "DONE" in r.err  # progress reached the caller's stderr pipe
    assert any(line.startswith("bkpy build") for line in _served(root))


def test_dockerfile_from_stdin_and_exit_status_of_bad_input(
        served: tuple[Path, Bkpy], tmp_path: Path) -> None:
    root, bkpy = served
    ctx = _ctx(tmp_path, "")
    ok = bkpy("build", "-f", "-", "-o", "type=local,dest=out", ".", cwd=ctx,
              stdin="FROM scratch\nCOPY Dockerfile /copied\n")
    assert ok.code == 0 and (ctx / "out" / "copied").exists()
    bad = bkpy("build", "-f", "-", ".", cwd=ctx, stdin="FROM busybox\nRUNN true\n",
               check=False)
    local = bkpy("build", "-f", "-", ".", cwd=ctx, stdin="FROM busybox\nRUNN true\n",
                 check=False, env={"BKPY_NO_SERVER": "1"})
    assert bad.code == local.code == 1
    assert bad.err == local.err and "Dockerfile" in bad.err and "Traceback" not in bad.err
    assert sum(1 for line in _served(root) if line.startswith("bkpy build")) == 2


@pytest.mark.parametrize("how", ["sigint", "caller-killed"])
def test_interrupt_or_a_vanished_caller_cancels_the_build(
        served: tuple[Path, Bkpy], tmp_path: Path, how: str) -> None:
    root, _ = served
    marker = f"srv-interrupt-{how}"
    ctx = _ctx(tmp_path, f"FROM busybox\nRUN sleep 600; echo {marker}\n")
    proc = subprocess.Popen([sys.executable, "-m", "buildkit_py", "build", "--progress",
                             "plain", str(ctx)], env=_env(root), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _running(marker):
            time.sleep(0.2)
        assert _running(marker), "the RUN step never started"
        proc.send_signal(signal.SIGINT if how == "sigint" else signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    if how == "sigint":
        assert proc.returncode == 130, err
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _running(marker):
        time.sleep(0.2)
    assert not _running(marker), "the container outlived the build"


def _running(marker: str) -> bool:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if marker.encode() in cmdline and b"sleep" in cmdline and b"python" not in cmdline:
            return True
    return False


def test_a_changed_module_makes_the_server_step_aside(
        served: tuple[Path, Bkpy], tmp_path: Path) -> None:
    root, bkpy = served
    import buildkit_py.cli.main as cli_main

    source = Path(cli_main.__file__)
    before = source.stat()
    try:
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
        r = bkpy("--version")
    finally:
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert "version" in r.out  # ran locally
    assert not any(line.startswith("bkpy --version") for line in _served(root))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(_socket(root)):
        time.sleep(0.1)
    assert not os.path.exists(_socket(root)), "a stale server kept serving"


def test_stop_and_status(served: tuple[Path, Bkpy]) -> None:
    root, bkpy = served
    assert "running" in bkpy("server", "status").out
    assert "stopped" in bkpy("server", "stop").out
    status = bkpy("server", "status", check=False)
    assert status.code == 1 and "not running" in status.out
    assert bkpy("--version").code == 0  # runs locally again
    assert not os.path.exists(_socket(root))


def test_only_one_server_per_root(served: tuple[Path, Bkpy]) -> None:
    _, bkpy = served
    assert "already running" in bkpy("server", "start").out


def test_warm_up_leaves_nothing_to_import_for_a_push_and_starts_no_thread() -> None:
    # A worker that imports on first use pays for it on every command (pushes were 2x
    # slower through the server before httpx's transport stack was warmed up).
    code = """
import sys, threading
from buildkit_py.cli.cmdserver import warm_up
warm_up()
before = set(sys.modules)
from buildkit_py.registry import RegistryClient
from buildkit_py.registry.reference import parse_reference
client = RegistryClient({})
transport = client._transport
transport.client(transport.hosts.push_endpoint(parse_reference("127.0.0.1:1/x/y").domain))
client.close()
print(sorted(set(sys.modules) - before), threading.active_count())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")[-2]
    assert out == "[] 1", out


def test_warm_up_leaves_grpc_to_remote_builders(tmp_path: Path) -> None:
    # gRPC is a third of the server's memory and only remote builders use it.
    code = """
import sys
from buildkit_py.cli.cmdserver import warm_up
warm_up()
warm = "grpc" in sys.modules
import buildkit_py.client.remote  # what a child of the server does for a remote build
print(warm, "grpc" in sys.modules)
"""
    env = dict(os.environ, BKPY_CONFIG=str(tmp_path / "client"))

    def warm() -> str:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, env=env).stdout.strip()

    assert warm() == "False True"
    (tmp_path / "client" / "builders").mkdir(parents=True)
    (tmp_path / "client" / "builders" / "far.json").write_text(
        '{"name": "far", "driver": "remote", '
        '"nodes": [{"name": "far0", "endpoint": "tcp://127.0.0.1:1"}]}')
    assert warm() == "True True"


def test_warm_up_leaves_nothing_to_import_for_a_cached_build(tmp_path: Path,
                                                            layout: Path) -> None:
    # What a child imports, each of them pays for (ISA-L's extension and difflib cost
    # ~3 ms of a ~45 ms no-op rebuild before the warm-up loaded them).
    root = tmp_path / "state"
    local = make_runner(root)
    local("image", "import", str(layout), "busybox:latest")
    ctx = _ctx(tmp_path, "FROM busybox\nCOPY Dockerfile /d\nRUN cat /d > /e\n")
    args = ["build", "--progress", "quiet", "-t", "warm/cached", "--load", str(ctx)]
    local(*args)
    code = f"""
import sys
from buildkit_py.cli.cmdserver import warm_up
from buildkit_py.cli.main import main
warm_up()
before = set(sys.modules)
try:
    main({args!r})
except SystemExit as exc:
    assert not exc.code, exc.code
print(sorted(set(sys.modules) - before))
"""
    env = dict(os.environ, BKPY_ROOT=str(root), BKPY_CONFIG=str(root / "client"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True).stdout.splitlines()[-1]
    assert out == "[]", out


def test_upkeep_after_the_answer_keeps_history_retention(
        served: tuple[Path, Bkpy], tmp_path: Path) -> None:
    """A served build answers before it removes old history records and closes the
    builder (that runs in the child afterwards, see buildkit_py.deferred); retention
    still holds, and a command on the same root waits for that upkeep."""
    root, bkpy = served
    # each build captures the caller's stdout and stderr: it returns once the child let go
    env = builds_with_two_history_entries(bkpy, tmp_path, 4)
    bkpy("du", env=env)  # owns the root: only after the last build's upkeep
    assert history_build_args(bkpy, env) == ["3", "2"]
    log = Path(log_path(_socket(root))).read_text()
    assert log.count("upkeep after the answer") == 4
