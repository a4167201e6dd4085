"""``bkpy debug --on=error build``: a failed RUN step's container opens on the terminal
(driven here through a real pty with pexpect): its files as the failure left them, its
mounts, env, workdir and user; the build then ends with the step's error. ``bkpy build
--invoke`` and ``debug --on=always`` open a shell in the result of a build that succeeds."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pexpect
import pytest

from tests.e2e.conftest import make_runner

DOCKERFILE = """\
FROM busybox:latest
RUN mkdir /work && chown 1000:1000 /work
WORKDIR /work
ENV STAGE=debugging
USER 1000
RUN --mount=type=cache,target=/cache,uid=1000 \\
    echo from-cache > /cache/note && echo made > made.txt && exit 5
"""
PROMPT = r"\$ "


@pytest.fixture
def root(tmp_path: Path, busybox_layout: Path) -> Path:
    state = tmp_path / "state"
    make_runner(state)("image", "import", str(busybox_layout), "busybox:latest")
    return state


def _spawn(root: Path, *args: str) -> pexpect.spawn:
    env = dict(os.environ, BKPY_ROOT=str(root), BKPY_CONFIG=str(root / "client"),
               BKPY_NO_SERVER="1", TERM="dumb")
    env.pop("BKPY_DEBUG", None)
    return pexpect.spawn(sys.executable, ["-m", "buildkit_py", *args], env=env,
                         encoding="utf-8", timeout=120, dimensions=(40, 120))


def test_a_failed_step_opens_a_shell_in_its_container(root: Path, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    child = _spawn(root, "debug", "--on=error", "build", "--network", "none", str(ctx))
    try:
        child.expect("failed \\(exit code 5\\); opening /bin/sh in its container")
        child.expect(PROMPT)
        child.sendline("echo at:$(pwd) uid:$(id -u) stage:$STAGE; cat made.txt /cache/note; "
                       "stty size; [ -t 0 ] && echo on-a-tty")
        child.expect("at:/work uid:1000 stage:debugging")
        child.expect("made")
        child.expect("from-cache")
        child.expect("40 120")
        child.expect("on-a-tty")
        child.sendline("exit")
        child.expect("the shell ended")
        child.expect("did not complete successfully: exit code: 5")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 1


@pytest.mark.parametrize("how", ["build --invoke", "debug --on=always"])
def test_invoke_opens_a_shell_in_the_result(root: Path, tmp_path: Path, how: str) -> None:
    ctx = tmp_path / "result"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox:latest\nWORKDIR /app\nENV MODE=built\nRUN echo result > out.txt\n")
    args = (["build", "--invoke", "/bin/sh"] if how == "build --invoke"
            else ["debug", "--on=always", "build"])
    child = _spawn(root, *args, "--network", "none", str(ctx))
    try:
        child.expect("the build succeeded; opening /bin/sh in a container of its result")
        child.expect(r"# ")
        child.sendline("echo at:$(pwd) mode:$MODE; cat out.txt; touch /scratch-change")
        child.expect("at:/app mode:built")
        child.expect("result")
        child.sendline("exit")
        child.expect("the shell ended")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    # the shell's changes were thrown away: the next shell does not see them
    again = _spawn(root, "build", "--invoke", "/bin/sh", "--network", "none", str(ctx))
    try:
        again.expect(r"# ")
        again.sendline("ls /scratch-change || echo no-leftover")
        again.expect("no-leftover")
        again.sendline("exit")
        again.expect(pexpect.EOF)
    finally:
        again.close(force=True)


def test_post_mortem_from_the_history(root: Path, tmp_path: Path) -> None:
    ctx = tmp_path / "pm"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    bkpy = make_runner(root)
    failed = bkpy("build", "--network", "none", str(ctx), check=False)  # no debugger asked
    assert failed.code == 1
    assert "bkpy history debug" in bkpy("history", "inspect").out
    layers = root / "worker" / "snapshots" / "overlayfs" / "snapshots"
    snapshots = sorted(os.listdir(layers))
    child = _spawn(root, "history", "debug")
    try:
        child.expect("opening /bin/sh in its container as the failure left it")
        child.expect(PROMPT)
        child.sendline("echo at:$(pwd) uid:$(id -u) stage:$STAGE; cat made.txt")
        child.expect("at:/work uid:1000 stage:debugging")
        child.expect("made")
        child.sendline("exit")
        child.expect("the shell ended")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    # the layers made to open it are gone again
    assert sorted(os.listdir(layers)) == snapshots

    (ctx / "Dockerfile").write_text("FROM busybox:latest\nRUN true\n")
    bkpy("build", "--network", "none", str(ctx))
    none = bkpy("history", "debug", check=False)
    assert none.code == 1 and "kept no failed RUN step" in none.err


def test_exec_into_a_running_step(root: Path, tmp_path: Path) -> None:
    ctx = tmp_path / "running"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox:latest\nWORKDIR /work\nENV PHASE=running\n"
        "RUN echo in-progress > state.txt && sleep 60\n")
    build = _spawn(root, "build", "--network", "none", "--progress", "plain", str(ctx))
    try:
        build.expect("RUN echo in-progress")
        states = root / "worker" / "executor" / "runtime"
        for _ in range(300):  # until the step's container exists (its runtime state)
            if states.is_dir() and any(states.iterdir()):
                break
            time.sleep(0.05)
        time.sleep(0.5)  # and has started its process
        child = _spawn(root, "debug", "exec", "in-progress")
        try:
            child.expect("opening /bin/sh in the running step")
            child.expect(r"# ")  # root's prompt
            child.sendline("echo at:$(pwd) phase:$PHASE; cat state.txt; "
                           "tr '\\0' ' ' < /proc/1/cmdline")
            child.expect("at:/work phase:running")
            child.expect("in-progress")
            child.expect("sleep 60")
            child.sendline("exit")
            child.expect("the shell ended")
            child.expect(pexpect.EOF)
        finally:
            child.close(force=True)
        assert child.exitstatus == 0
        assert build.isalive()  # the step went on
        build.sendintr()  # Ctrl-C: the build stops its step's container
        build.expect(pexpect.EOF)
    finally:
        build.close(force=True)
    none = make_runner(root)("debug", "exec", check=False)
    assert none.code == 1 and "no RUN step is running" in none.err


def test_a_build_that_succeeds_opens_nothing(root: Path, tmp_path: Path) -> None:
    ctx = tmp_path / "ok"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nRUN echo fine\n")
    child = _spawn(root, "debug", "build", "--network", "none", str(ctx))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "opening" not in (child.before or "")


def test_debug_needs_a_build_and_a_single_node(root: Path, tmp_path: Path) -> None:
    bkpy = make_runner(root)
    bad = bkpy("debug", "images", check=False)
    assert bad.code == 2 and "bkpy debug wraps a build" in bad.err
    (tmp_path / "Dockerfile").write_text("FROM busybox:latest\n")
    bkpy("builder", "create", "--name", "two", "--driver", "remote", "unix:///nowhere-a.sock")
    bkpy("builder", "create", "--name", "two", "--append", "--node", "second", "--driver",
         "remote", "unix:///nowhere-b.sock")
    for args in (["debug", "build"], ["build", "--invoke", "sh"]):
        several = bkpy(*args, "--builder", "two", str(tmp_path), check=False)
        assert several.code == 2 and "needs a single-node builder" in several.err
