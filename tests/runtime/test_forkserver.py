"""The fork server: runtime commands forked from one warm process behave as the CLI does,
and the compiled seccomp filters it remembers are the ones a fresh process would compile."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Iterator

import pytest
from bkpy_runc import seccomp

from buildkit_py.executor.forkserver import ForkServer, ServedProcess
from buildkit_py.executor.seccomp_default import default_profile

from .bundle import DOCKER_CAPS
from .conftest import RUNTIME_DIR, Result, Runtimes

DOCKER = default_profile(DOCKER_CAPS)


@pytest.fixture
def server() -> Iterator[ForkServer]:
    fs = ForkServer(sys.executable, RUNTIME_DIR)
    assert fs.start()
    yield fs
    fs.close()


def _served(server: ForkServer, rt: Runtimes, *args: str) -> tuple[ServedProcess, int, int]:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        proc = server.spawn(["--root", rt.roots["bkpy"], *args], out_w, err_w)
    finally:
        os.close(out_w)
        os.close(err_w)
    assert proc is not None
    return proc, out_r, err_r


def _read(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode()


def _run_served(server: ForkServer, rt: Runtimes, bundle: str, cid: str) -> Result:
    proc, out_r, err_r = _served(server, rt, "run", "--bundle", bundle, cid)
    out, err = _read(out_r), _read(err_r)
    res = Result.__new__(Result)
    res.rc, res.out, res.err = proc.wait(timeout=30), out, err
    return res


def test_served_run_matches_the_cli(server: ForkServer, rt: Runtimes) -> None:
    bundle = rt.bundle(["sh", "-c", "echo out; echo err >&2; hostname; id -u; exit 5"])
    served = _run_served(server, rt, bundle, f"fs{os.getpid()}")
    cli = rt.run("bkpy", bundle)
    assert (served.rc, served.out, served.err) == (cli.rc, cli.out, cli.err) == (
        5, "out\nbuildkitsandbox\n0\n", "err\n")
    missing = _run_served(server, rt, rt.bundle(["/bin/nope"]), f"fs{os.getpid()}-x")
    assert missing.rc == 1 and "/bin/nope" in missing.err


def test_seccomp_is_enforced_on_every_served_run(server: ForkServer, rt: Runtimes) -> None:
    bundle = rt.bundle(["sh", "-c", "grep '^Seccomp:' /proc/self/status; busybox unshare -U true"],
                       **{"linux.seccomp": DOCKER})
    for i in range(3):  # compiled by the first, remembered for the others
        res = _run_served(server, rt, bundle, f"sc{os.getpid()}-{i}")
        assert (res.rc, res.out) == (1, "Seccomp:\t2\n"), res
        assert "Operation not permitted" in res.err
        time.sleep(0.05)  # lets the server take in the filter the first run sent back


def test_a_killed_command_reports_the_signal(server: ForkServer, rt: Runtimes) -> None:
    cid = f"kill{os.getpid()}"
    proc, out_r, err_r = _served(server, rt, "run", "--bundle", rt.bundle(["sleep", "30"]), cid)
    deadline = time.monotonic() + 10
    while '"running"' not in rt.cmd("bkpy", "state", cid).out:
        assert time.monotonic() < deadline, "the container did not start"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # the runtime, not the container: that stays up
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert rt.cmd("bkpy", "delete", "--force", cid).rc == 0
    os.close(out_r)
    os.close(err_r)


def test_a_malformed_request_is_dropped_and_the_server_goes_on(server: ForkServer,
                                                               rt: Runtimes) -> None:
    assert server._ctl is not None
    socket.send_fds(server._ctl, [b"run"], [sys.stdout.fileno()])  # one fd, not four
    res = _run_served(server, rt, rt.bundle(["true"]), f"ok{os.getpid()}")
    assert res.rc == 0


@pytest.fixture
def memo() -> Iterator[list[str]]:
    """The fork server's seccomp memo, on in this process; records what was learned."""
    learned: list[str] = []

    def learn(key: str, filt: seccomp.Filter) -> None:
        learned.append(key)
        seccomp.memo[key] = filt

    seccomp.memo.clear()
    seccomp.learned = learn
    yield learned
    seccomp.learned = None
    seccomp.memo.clear()


def test_a_remembered_filter_is_the_compiled_one(memo: list[str]) -> None:
    fresh = seccomp.Profile(DOCKER, "x86_64").compile()
    again = seccomp.Profile(DOCKER, "x86_64")
    assert len(memo) == 1 and again.compile() is seccomp.memo[memo[0]]
    assert (fresh.program, fresh.flags, fresh.syscall_nr) == (
        seccomp.compile_profile(DOCKER, "x86_64").program, 0, 317)
    other = {**DOCKER, "defaultErrnoRet": 38}
    assert seccomp.Profile(other, "x86_64").compile().program != fresh.program
    assert seccomp.Profile(DOCKER, "aarch64").compile().program != fresh.program
    assert len(memo) == 3


def test_an_invalid_profile_is_still_refused_with_the_memo_on(memo: list[str]) -> None:
    seccomp.Profile(DOCKER, "x86_64").compile()
    with pytest.raises(seccomp.RuntimeFailure, match="unknown action"):
        seccomp.Profile({**DOCKER, "defaultAction": "SCMP_ACT_NOPE"}, "x86_64")


def test_packed_filters_round_trip_and_partial_ones_are_refused() -> None:
    filt = seccomp.compile_profile(DOCKER, "x86_64")
    data = seccomp.pack(filt)
    back = seccomp.unpack(data)
    assert back is not None
    assert (back.program, back.flags, back.syscall_nr) == (filt.program, filt.flags, 317)
    assert seccomp.unpack(data[:-8]) is None and seccomp.unpack(data[:5]) is None
