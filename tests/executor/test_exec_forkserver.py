"""The bundled runtime's commands forked from a warm fork server, and the executor's
tmpfs state directory: same results as a runtime process of its own, fewer costs."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from buildkit_py.executor import ExecRequest, Executor

from .conftest import run


def _server_pid(ex: Executor) -> int:
    server = ex._fork_server
    assert server is not None and server._proc is not None
    return server._proc.pid


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] not in "ZX"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("fork_server", [True, False])
def test_output_exit_code_and_seccomp_match_with_and_without_the_server(
        fork_server: bool, tmp_path: Path, rootfs: Path) -> None:
    ex = Executor("bkpy-runc", tmp_path / "state", fork_server=fork_server)
    try:
        assert (ex._fork_server is not None) == fork_server
        for _ in range(3):  # the first run compiles the filter, later ones reuse it
            res = run(ex, ExecRequest(rootfs=rootfs, args=[
                "/bin/sh", "-c", "echo out; echo err >&2; hostname; exit 7"]))
            assert (res.code, res.stdout, res.stderr) == (7, "out\nbuildkitsandbox\n", "err\n")
            # Docker's profile refuses unshare(2)
            denied = run(ex, ExecRequest(rootfs=rootfs, args=[
                "/bin/sh", "-c", "grep '^Seccomp:' /proc/self/status; busybox unshare -U true"]))
            assert (denied.code, denied.stdout) == (1, "Seccomp:\t2\n")
            assert "Operation not permitted" in denied.stderr
    finally:
        ex.close()


def test_a_dead_server_is_replaced_and_close_stops_it(tmp_path: Path, rootfs: Path) -> None:
    ex = Executor("bkpy-runc", tmp_path / "state")
    try:
        assert run(ex, ExecRequest(rootfs=rootfs, args=["/bin/true"])).code == 0
        first = _server_pid(ex)
        os.kill(first, signal.SIGKILL)
        assert run(ex, ExecRequest(rootfs=rootfs, args=["/bin/echo", "again"])).stdout == "again\n"
        second = _server_pid(ex)
        assert second != first and _alive(second)
    finally:
        ex.close()
    deadline = time.monotonic() + 5
    while _alive(second) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(second)


def test_runtime_state_is_on_tmpfs_behind_the_state_dir_link(tmp_path: Path, rootfs: Path
                                                             ) -> None:
    ex = Executor("bkpy-runc", tmp_path / "state")
    link = tmp_path / "state" / "runtime"
    try:
        target = Path(os.readlink(link))
        assert target.parent == Path(f"/dev/shm/bkpy-runtime-{os.geteuid()}")
        st = target.parent.lstat()
        assert st.st_uid == os.geteuid() and st.st_mode & 0o077 == 0
        # the container's state is there (through the link) while it runs
        seen = run(ex, ExecRequest(rootfs=rootfs, args=["/bin/sleep", "0"]))
        assert seen.code == 0 and os.listdir(link) == []
    finally:
        ex.close()
    assert not target.exists()  # an empty state dir goes with the executor
    again = Executor("bkpy-runc", tmp_path / "state")  # and comes back (as after a reboot)
    try:
        assert Path(os.readlink(link)) == target and target.is_dir()
        assert run(again, ExecRequest(rootfs=rootfs, args=["/bin/true"])).code == 0
    finally:
        again.close()


def test_an_existing_state_directory_is_kept(tmp_path: Path, rootfs: Path) -> None:
    (tmp_path / "state" / "runtime").mkdir(parents=True)
    ex = Executor("bkpy-runc", tmp_path / "state")
    try:
        assert not (tmp_path / "state" / "runtime").is_symlink()
        assert run(ex, ExecRequest(rootfs=rootfs, args=["/bin/true"])).code == 0
    finally:
        ex.close()


def test_idle_empty_state_dirs_are_pruned_and_a_pruned_one_comes_back(
        tmp_path: Path, rootfs: Path) -> None:
    shm = Path(f"/dev/shm/bkpy-runtime-{os.geteuid()}")
    shm.mkdir(mode=0o700, exist_ok=True)
    idle, busy, recent = shm / "test-idle-empty", shm / "test-idle-busy", shm / "test-recent"
    for d in (idle, busy, recent):
        d.mkdir(exist_ok=True)
    (busy / "c1").mkdir(exist_ok=True)
    hours_ago = time.time() - 7200
    for d in (idle, busy):
        os.utime(d, (hours_ago, hours_ago))
    ex = Executor("bkpy-runc", tmp_path / "state")
    try:
        assert not idle.exists() and busy.exists() and recent.exists()
        os.rmdir(os.path.realpath(tmp_path / "state" / "runtime"))  # pruned by another
        assert run(ex, ExecRequest(rootfs=rootfs, args=["/bin/true"])).code == 0
    finally:
        ex.close()
        (busy / "c1").rmdir()
        busy.rmdir()
        recent.rmdir()
