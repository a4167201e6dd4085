"""``bkpy server start|stop|status``: the warm command server for this ``BKPY_ROOT``.

The first command on a state root starts it by itself (:mod:`autostart`); these commands
start it ahead of time, stop it, or say whether it runs.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import click

from buildkit_py.cli.autostart import log_path, pid_path, spawn, try_lock
from buildkit_py.cli.launch import socket_path
from buildkit_py.config import load_config, parse_idle_timeout
from buildkit_py.errors import UserError

START_TIMEOUT = 60.0
STOP_WAIT = 10.0  # for a server that is starting to listen


def _running_pid(sock: str) -> int | None:
    """The server's pid when it is alive and its socket exists, else None.

    Not probed by connecting: every connection makes the server fork a worker.
    """
    if not os.path.exists(sock):
        return None
    try:
        with open(pid_path(sock)) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            alive = b"buildkit_py.cli.cmdserver" in f.read()
    except (OSError, ValueError):
        return None
    return pid if alive else None


def _wait_for_pid(sock: str, deadline: float) -> int | None:
    """The pid of a server another command is starting, once it listens."""
    while time.monotonic() < deadline:
        pid = _running_pid(sock)
        if pid is not None:
            return pid
        lock = try_lock(sock)
        if lock is not None:  # the lock is free: nobody is starting one after all
            os.close(lock)
            return None
        time.sleep(0.05)
    return None


@click.group("server")
def server() -> None:
    """A warm process that runs bkpy commands without start-up cost.

    The first bkpy command on a state root starts it in the background; every later
    `bkpy` command with the same BKPY_ROOT is handed to it and runs in a fork of it
    (same output, exit status and effects; no interpreter start-up or imports). It exits
    after an idle timeout ([command-server] idle-timeout in the builder config, 15m).
    BKPY_NO_SERVER=1 neither uses nor starts it; [command-server] auto-start = false
    leaves the start to `bkpy server start`.
    """


@server.command("start")
@click.option("--idle-timeout", default=None,
              help="Exit after this long without a command (0: never). "
                   "[default: the config's, 15m]")
def start(idle_timeout: str | None) -> None:
    """Start the command server in the background."""
    sock = socket_path()
    idle = (load_config().command_server.idle_timeout if idle_timeout is None
            else parse_idle_timeout(idle_timeout))
    deadline = time.monotonic() + START_TIMEOUT
    lock = None
    while lock is None:
        pid = _running_pid(sock) or _wait_for_pid(sock, deadline)
        if pid is not None:
            click.echo(f"bkpy server already running (pid {pid}, {sock})")
            return
        if time.monotonic() >= deadline:
            raise UserError("another bkpy server is starting and did not come up in time",
                            hint=f"see {log_path(sock)}")
        lock = try_lock(sock)
    try:
        proc = spawn(sock, idle, lock)
    finally:
        os.close(lock)  # the server holds it now
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UserError(f"bkpy server exited during start-up (status {proc.returncode})",
                            hint=f"see {log_path(sock)}")
        if _running_pid(sock) == proc.pid:
            click.echo(f"bkpy server started (pid {proc.pid}, {sock})")
            return
        time.sleep(0.05)
    proc.terminate()
    raise UserError("bkpy server did not start in time", hint=f"see {log_path(sock)}")


@server.command("stop")
def stop() -> None:
    """Stop the command server (commands it is running finish)."""
    sock = socket_path()
    # One that a command has just started is stopped too, once it listens.
    pid = _running_pid(sock) or _wait_for_pid(sock, time.monotonic() + STOP_WAIT)
    if pid is None:
        click.echo("bkpy server is not running")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(sock):
        time.sleep(0.02)
    click.echo(f"bkpy server stopped (pid {pid})")


@server.command("status")
def status() -> None:
    """Say whether a command server runs for this BKPY_ROOT (exit 1 if not)."""
    sock = socket_path()
    pid = _running_pid(sock)
    if pid is None:
        auto = load_config().command_server.auto_start
        click.echo(f"bkpy server: not running ({sock}); "
                   + ("the next command starts it" if auto else "auto-start is off"))
        sys.exit(1)
    click.echo(f"bkpy server: running (pid {pid}, {sock}, log {log_path(sock)})")
