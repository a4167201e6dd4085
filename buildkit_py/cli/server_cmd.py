"""``bkpy server start|stop|status``: the warm command server for this ``BKPY_ROOT``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click

from buildkit_py.cli.cmdserver import log_path, pid_path
from buildkit_py.cli.launch import socket_path
from buildkit_py.config import parse_duration
from buildkit_py.errors import UserError

START_TIMEOUT = 60.0


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


@click.group("server")
def server() -> None:
    """A warm process that runs bkpy commands without start-up cost.

    While it runs, every `bkpy` command with the same BKPY_ROOT is handed to it and
    runs in a fork of it (same output, exit status and effects; no interpreter start-up
    or imports). Set BKPY_NO_SERVER=1 to bypass it.
    """


@server.command("start")
@click.option("--idle-timeout", default="30m", show_default=True,
              help="Exit after this long without a command (0: never).")
def start(idle_timeout: str) -> None:
    """Start the command server in the background."""
    sock = socket_path()
    pid = _running_pid(sock)
    if pid is not None:
        click.echo(f"bkpy server already running (pid {pid}, {sock})")
        return
    idle = 0.0 if idle_timeout.strip() == "0" else parse_duration(idle_timeout)
    os.makedirs(os.path.dirname(sock), mode=0o700, exist_ok=True)
    with open(log_path(sock), "wb") as log:  # one log per server run
        proc = subprocess.Popen(
            [sys.executable, "-m", "buildkit_py.cli.cmdserver", sock, str(idle)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            cwd="/")
    deadline = time.monotonic() + START_TIMEOUT
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
    pid = _running_pid(sock)
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
        click.echo(f"bkpy server: not running ({sock})")
        sys.exit(1)
    click.echo(f"bkpy server: running (pid {pid}, {sock}, log {log_path(sock)})")
