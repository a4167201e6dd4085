"""The warm command server starts itself: the first command on a state root starts one in
the background as it ends and the next is served warm (queued while the server warms up);
concurrent first commands start one between them; a server that dies before starting a
command leaves it to its caller; an idle server exits; another install is never served by
it; ``BKPY_NO_SERVER=1`` and ``[command-server] auto-start = false`` turn the start off.

The rest of the suite runs with ``BKPY_NO_SERVER=1`` (tests/conftest.py); these tests set
it to 0 and end every server they caused (by pid), checking that none is left.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from buildkit_py.cli.autostart import log_path

SERVER_MODULE = b"buildkit_py.cli.cmdserver"


def _env(root: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, BKPY_ROOT=str(root), BKPY_CONFIG=str(root / "client"),
               BKPY_NO_SERVER="0")
    env.pop("BKPY_DEBUG", None)
    env.pop("BKPY_BUILDER_CONFIG", None)
    env.update(extra)
    return env


def _bkpy(root: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "buildkit_py", *args], env=_env(root, **extra),
                          capture_output=True, text=True, timeout=120, cwd=root.parent)
    assert proc.returncode == 0, proc.stderr
    return proc


def _socket(root: Path, **extra: str) -> str:
    out = subprocess.run([sys.executable, "-c",
                          "from buildkit_py.cli.launch import socket_path; print(socket_path())"],
                         env=_env(root, **extra), capture_output=True, text=True, check=True,
                         cwd=root.parent)  # not the checkout: PYTHONPATH decides
    return out.stdout.strip()


def _servers(sock: str) -> list[int]:
    """Pids of command servers for ``sock`` (by their command line; not their forked
    workers, which share it)."""
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if SERVER_MODULE in argv and sock.encode() in argv:
            parents[int(name)] = ppid
    return [pid for pid, ppid in parents.items() if ppid not in parents]


def _wait(pred: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def _served(sock: str) -> list[str]:
    try:
        text = Path(log_path(sock)).read_text()
    except FileNotFoundError:
        return []
    return [line.split(": ", 1)[1] for line in text.splitlines() if ": bkpy " in line]


def _config(tmp_path: Path, body: str) -> str:
    path = tmp_path / "bkpyd.toml"
    path.write_text(body)
    return str(path)


@pytest.fixture
def sockets() -> Iterator[list[str]]:
    """Sockets whose servers this test may start; each is ended at teardown."""
    socks: list[str] = []
    yield socks
    for sock in socks:
        for pid in _servers(sock):
            os.kill(pid, signal.SIGTERM)
    for sock in socks:
        assert _wait(lambda s=sock: not _servers(s), 20), f"a server for {sock} outlived the test"
        Path(log_path(sock)).unlink(missing_ok=True)


def test_first_command_starts_a_server_and_the_next_is_served(
        tmp_path: Path, sockets: list[str]) -> None:
    root = tmp_path / "state"
    sock = _socket(root)
    sockets.append(sock)
    first = _bkpy(root, "images")
    assert "NAME" in first.stdout and first.stderr == ""  # ran here, quietly
    assert _wait(lambda: os.path.exists(sock), 60), "no server came up"
    second = _bkpy(root, "images")
    assert second.stdout == first.stdout
    assert _served(sock) == ["bkpy images"]
    assert len(_servers(sock)) == 1
    assert "running" in _bkpy(root, "server", "status").stdout


def test_concurrent_first_commands_start_one_server(tmp_path: Path, sockets: list[str]) -> None:
    root = tmp_path / "state"
    root.mkdir()
    sock = _socket(root)
    sockets.append(sock)
    procs = [subprocess.Popen([sys.executable, "-m", "buildkit_py", "images"], env=_env(root),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for _ in range(6)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert _wait(lambda: os.path.exists(sock), 60), "no server came up"
    time.sleep(1.0)  # a second server, had one been spawned, would be alive by now
    assert len(_servers(sock)) == 1


def test_an_idle_server_exits(tmp_path: Path, sockets: list[str]) -> None:
    root = tmp_path / "state"
    config = _config(tmp_path, '[command-server]\nidle-timeout = "1s"\n')
    sock = _socket(root)
    sockets.append(sock)
    _bkpy(root, "images", BKPY_BUILDER_CONFIG=config)
    assert _wait(lambda: os.path.exists(sock), 60), "no server came up"
    assert _wait(lambda: not _servers(sock), 20), "the idle server kept running"
    assert not os.path.exists(sock)
    assert "idle timeout" in Path(log_path(sock)).read_text()


@pytest.mark.parametrize("how", ["env", "config"])
def test_auto_start_can_be_turned_off(tmp_path: Path, sockets: list[str], how: str) -> None:
    root = tmp_path / "state"
    sock = _socket(root)
    sockets.append(sock)
    off = ({"BKPY_NO_SERVER": "1"} if how == "env" else
           {"BKPY_BUILDER_CONFIG": _config(tmp_path, "[command-server]\nauto-start = false\n")})
    _bkpy(root, "images", **off)
    # a server is spawned by the time the command ends: one started would be alive now
    assert _servers(sock) == [] and not os.path.exists(sock)
    if how == "config":  # an explicit start still works
        assert "started" in _bkpy(root, "server", "start", **off).stdout
        _bkpy(root, "images", **off)
        assert _served(sock) == ["bkpy images"]
        assert "stopped" in _bkpy(root, "server", "stop", **off).stdout


def test_server_commands_help_and_version_start_none(tmp_path: Path, sockets: list[str]) -> None:
    root = tmp_path / "state"
    sock = _socket(root)
    sockets.append(sock)
    for args in (["--version"], ["--help"], ["images", "--help"], ["server", "stop"]):
        _bkpy(root, *args)
    status = subprocess.run([sys.executable, "-m", "buildkit_py", "server", "status"],
                            env=_env(root), capture_output=True, text=True, timeout=60)
    assert status.returncode == 1 and "not running" in status.stdout
    assert _servers(sock) == []


def test_another_install_is_never_served(tmp_path: Path, sockets: list[str]) -> None:
    root = tmp_path / "state"
    sock = _socket(root)
    sockets.append(sock)
    _bkpy(root, "images")
    assert _wait(lambda: os.path.exists(sock), 60), "no server came up"
    # A second copy of the package (another checkout, venv or version) has its own socket.
    import buildkit_py

    other = tmp_path / "other"
    shutil.copytree(Path(buildkit_py.__file__).parent, other / "buildkit_py",
                    ignore=shutil.ignore_patterns("__pycache__"))
    copy = {"PYTHONPATH": str(other),
            "BKPY_BUILDER_CONFIG": _config(tmp_path, "[command-server]\nauto-start = false\n")}
    other_sock = _socket(root, **copy)
    assert other_sock != sock
    sockets.append(other_sock)
    _bkpy(root, "images", **copy)
    assert _served(sock) == []
    # A caller that claims another install over this socket is told to run it itself.
    code = ("import sys, buildkit_py.cli.launch as l\n"
            "l.install_key = lambda: 'another install'\n"
            "s = l._connect(sys.argv[1])\n"
            "print(l.run_via_server(s, ['images']))\n")
    out = subprocess.run([sys.executable, "-c", code, sock], env=_env(root),
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "None", out.stderr
    assert _served(sock) == [] and len(_servers(sock)) == 1  # still serving its own


def _server_started(root: Path, sock: str) -> int:
    _bkpy(root, "server", "start")  # returns once it listens, possibly still warming up
    (pid,) = _servers(sock)
    return pid


def test_a_command_during_warm_up_waits_for_the_server(
        tmp_path: Path, sockets: list[str]) -> None:
    root = tmp_path / "state"
    sock = _socket(root)
    sockets.append(sock)
    pid = _server_started(root, sock)
    os.kill(pid, signal.SIGSTOP)  # a server that has not finished warming up
    try:
        caller = subprocess.Popen([sys.executable, "-m", "buildkit_py", "images"],
                                  env=_env(root), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        assert caller.poll() is None, "the caller ran the command itself"
    finally:
        os.kill(pid, signal.SIGCONT)
    out, err = caller.communicate(timeout=120)
    assert caller.returncode == 0, err
    assert "NAME" in out and _served(sock) == ["bkpy images"]


def test_a_server_dying_before_the_command_starts_leaves_it_to_the_caller(
        tmp_path: Path, sockets: list[str]) -> None:
    root = tmp_path / "state"
    sock = _socket(root)
    sockets.append(sock)
    pid = _server_started(root, sock)
    os.kill(pid, signal.SIGSTOP)
    caller = subprocess.Popen([sys.executable, "-m", "buildkit_py", "images"],
                              env=_env(root, BKPY_BUILDER_CONFIG=_config(
                                  tmp_path, "[command-server]\nauto-start = false\n")),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)  # queued on the socket, its request sent
    os.kill(pid, signal.SIGKILL)
    out, err = caller.communicate(timeout=120)
    assert caller.returncode == 0, err
    assert "NAME" in out and err == ""
    assert _served(sock) == []


def test_a_server_started_beside_a_command_runs_at_idle_priority_until_warm(
        tmp_path: Path, sockets: list[str]) -> None:
    """Started beside the first command (root here), the server is at SCHED_IDLE from
    its interpreter's start, and back at normal priority once it has warmed up."""
    from buildkit_py.cli.autostart import can_leave_idle_priority

    assert can_leave_idle_priority()  # the suite runs as root
    root = tmp_path / "state"
    sock = _socket(root)
    sockets.append(sock)
    env = _env(root)
    code = ("import sys\n"
            "from buildkit_py.cli import autostart\n"
            "autostart.start_in_background(['images'], sys.argv[1], beside=True)\n")
    started = subprocess.run([sys.executable, "-c", code, sock], env=env, timeout=60,
                             capture_output=True, text=True, cwd=root.parent)
    assert started.returncode == 0, started.stderr
    assert _wait(lambda: len(_servers(sock)) == 1, 10)
    (pid,) = _servers(sock)
    assert os.sched_getscheduler(pid) == os.SCHED_IDLE  # an interpreter still starting
    _bkpy(root, "--version")  # served only once the warm-up is over
    assert _wait(lambda: os.sched_getscheduler(pid) == os.SCHED_OTHER, 10)


def test_stop_also_stops_a_server_that_is_still_starting(
        tmp_path: Path, sockets: list[str]) -> None:
    """`bkpy server stop` right after a first command: the server it started does not
    listen yet (held here with SIGSTOP), and is stopped once it does."""
    root = tmp_path / "state"
    sock = _socket(root)
    sockets.append(sock)
    code = ("import sys\n"
            "from buildkit_py.cli import autostart\n"
            "autostart.start_in_background(['images'], sys.argv[1], beside=True)\n")
    subprocess.run([sys.executable, "-c", code, sock], env=_env(root), timeout=60,
                   check=True, cwd=root.parent)
    assert _wait(lambda: len(_servers(sock)) == 1, 10)
    (pid,) = _servers(sock)
    os.kill(pid, signal.SIGSTOP)
    try:
        assert not os.path.exists(sock)  # still starting: not listening
        stopper = subprocess.Popen([sys.executable, "-m", "buildkit_py", "server", "stop"],
                                   env=_env(root), stdout=subprocess.PIPE, text=True,
                                   cwd=root.parent)
        time.sleep(1.0)
        assert stopper.poll() is None, "stop gave up on a starting server"
    finally:
        os.kill(pid, signal.SIGCONT)
    out, _ = stopper.communicate(timeout=60)
    assert stopper.returncode == 0 and f"stopped (pid {pid})" in out
    assert _wait(lambda: not _servers(sock), 20)
