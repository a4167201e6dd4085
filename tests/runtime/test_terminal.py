"""``process.terminal: true`` with ``--console-socket``: the process gets a pseudo-terminal
from the container's devpts as its controlling terminal and stdio, and the master side is
sent over the socket; bkpy-runc and runc behave alike."""

from __future__ import annotations

import os
import select
import socket
import subprocess

import pytest

from .conftest import Runtimes
from .console import read_until_closed, receive_master


def _drive(rt: Runtimes, runtime: str, bundle: str, typed: bytes) -> tuple[str, bytes, str]:
    """Run the bundle detached with a console socket, type ``typed``, read until the
    process ends; (its state afterwards, what the terminal showed, the name sent with the
    master)."""
    path = os.path.join(rt.tmp, f"console-{runtime}.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    cid = f"tty{os.getpid()}-{runtime}"
    pid_file = os.path.join(rt.tmp, f"{cid}.pid")
    proc = subprocess.Popen([*rt.argv(runtime), "run", "--detach", "--console-socket", path,
                             "--pid-file", pid_file, "--bundle", bundle, cid],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        name, master = receive_master(listener)
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
        with open(pid_file) as f:
            pidfd = os.pidfd_open(int(f.read()))
        os.write(master, typed)
        shown = read_until_closed(master)
        os.close(master)
        select.select([pidfd], [], [], 30)  # the process has ended (not our child: no status)
        os.close(pidfd)
        state = rt.cmd(runtime, "state", cid).out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listener.close()
        rt.cmd(runtime, "delete", "--force", cid)
    return state, shown, name


@pytest.mark.parametrize("runtime", ["bkpy", "runc"])
def test_the_process_gets_a_terminal(rt: Runtimes, runtime: str) -> None:
    script = ("tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-ttys; "
              "stty size; read line; echo got:$line; exit 7")
    bundle = rt.bundle(["/bin/sh", "-c", script], **{"process.terminal": True,
                                                      "process.consoleSize":
                                                          {"height": 33, "width": 101}})
    state, shown, name = _drive(rt, runtime, bundle, b"typed-in\n")
    text = shown.decode(errors="replace").replace("\r\n", "\n")
    assert '"stopped"' in state
    assert name == "/dev/ptmx"
    assert "/dev/pts/0\n" in text and "all-ttys\n" in text
    assert "33 101\n" in text
    assert "typed-in\n" in text  # the terminal echoes what is typed
    assert "got:typed-in\n" in text


@pytest.mark.parametrize("runtime", ["bkpy", "runc"])
def test_terminal_and_console_socket_go_together(rt: Runtimes, runtime: str) -> None:
    with_tty = rt.bundle(["/bin/true"], **{"process.terminal": True})
    assert rt.run(runtime, with_tty, "--detach").rc != 0  # a terminal needs a socket
    without = rt.bundle(["/bin/true"])
    sock = os.path.join(rt.tmp, "unused.sock")
    refused = rt.run(runtime, without, "--console-socket", sock)
    assert refused.rc != 0 and "cannot use console socket" in refused.err
