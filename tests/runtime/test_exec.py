"""``exec``: a second process in a running container joins its namespaces and cgroups and
takes its process settings (env, cwd, user), with or without a terminal; bkpy-runc and
runc give the same answers."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from .bundle import PATH
from .conftest import Runtimes
from .console import read_until_closed, receive_master

PROBE = ("echo env:$FOO cwd:$(pwd) uid:$(id -u); tr '\\0' ' ' < /proc/1/cmdline; echo; "
         "hostname")


def _started(rt: Runtimes, runtime: str, cid: str) -> None:
    bundle = rt.bundle(["/bin/sleep", "60"], **{"process.env": [f"PATH={PATH}", "FOO=bar"],
                                                "process.cwd": "/tmp",
                                                "process.user": {"uid": 1000, "gid": 1000}})
    # its stdio must not be our capture pipes: the container keeps them open
    res = rt.cmd(runtime, "run", "--detach", "--bundle", bundle, cid,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert res.rc == 0, res


@pytest.mark.parametrize("runtime", ["bkpy", "runc"])
def test_exec_joins_the_container(rt: Runtimes, runtime: str) -> None:
    cid = f"ex{os.getpid()}-{runtime}"
    _started(rt, runtime, cid)
    try:
        res = rt.cmd(runtime, "exec", cid, "/bin/sh", "-c", PROBE)
        assert res.rc == 0, res
        lines = res.out.splitlines()
        assert lines[0] == "env:bar cwd:/tmp uid:1000"
        assert lines[1].strip() == "/bin/sleep 60"  # PID 1 is the container's process
        assert lines[2] == "buildkitsandbox"
        assert rt.cmd(runtime, "exec", cid, "/bin/sh", "-c", "exit 3").rc == 3
        assert rt.cmd(runtime, "exec", "--cwd", "/", cid, "/bin/pwd").out == "/\n"
    finally:
        rt.cmd(runtime, "delete", "--force", cid)
    stopped = rt.cmd(runtime, "exec", cid, "/bin/true")
    assert stopped.rc != 0


@pytest.mark.parametrize("runtime", ["bkpy", "runc"])
def test_exec_with_a_terminal(rt: Runtimes, runtime: str) -> None:
    cid = f"ext{os.getpid()}-{runtime}"
    _started(rt, runtime, cid)
    path = os.path.join(rt.tmp, f"exec-{runtime}.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    try:
        res = rt.cmd(runtime, "exec", "--tty", "--detach", "--console-socket", path, cid,
                     "/bin/sh", "-c", "tty; echo on-tty:$FOO")
        assert res.rc == 0, res
        _name, master = receive_master(listener)
        shown = read_until_closed(master)
        os.close(master)
        text = shown.decode().replace("\r\n", "\n")
        assert text.startswith("/dev/pts/") and "on-tty:bar\n" in text
    finally:
        listener.close()
        rt.cmd(runtime, "delete", "--force", cid)
