"""The step debugger on a remote bkpyd: the failed step's shell runs on the daemon, its
terminal relayed to the client's (a pty driven by pexpect) over the build's session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pexpect

from tests.control.conftest import MakeDaemon, client_env

DOCKERFILE = """\
FROM busybox:latest
WORKDIR /srv
ENV WHERE=daemon
RUN echo left-by-the-step > note.txt && exit 4
"""


def test_a_failed_step_on_the_daemon_opens_on_the_clients_terminal(
        tmp_path: Path, make_daemon: MakeDaemon) -> None:
    daemon = make_daemon()
    env = dict(os.environ, **client_env(tmp_path, daemon), BKPY_NO_SERVER="1", TERM="dumb")
    env.pop("BKPY_DEBUG", None)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    child = pexpect.spawn(sys.executable, ["-m", "buildkit_py", "debug", "build", "--network",
                                           "none", str(ctx)],
                          env=env, encoding="utf-8", timeout=120, dimensions=(30, 90))
    try:
        child.expect("failed \\(exit code 4\\); opening /bin/sh in its container")
        child.expect(r"# ")
        child.sendline("echo at:$(pwd) where:$WHERE; cat note.txt; stty size")
        child.expect("at:/srv where:daemon")
        child.expect("left-by-the-step")
        child.expect("30 90")
        child.sendline("exit")
        child.expect("the shell ended")
        child.expect("did not complete successfully: exit code: 4")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 1


def test_invoke_opens_the_daemons_result_on_the_clients_terminal(
        tmp_path: Path, make_daemon: MakeDaemon) -> None:
    daemon = make_daemon()
    env = dict(os.environ, **client_env(tmp_path, daemon), BKPY_NO_SERVER="1", TERM="dumb")
    env.pop("BKPY_DEBUG", None)
    ctx = tmp_path / "ok"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nWORKDIR /out\n"
                                    "RUN echo built-remotely > r.txt\n")
    child = pexpect.spawn(sys.executable, ["-m", "buildkit_py", "build", "--invoke", "/bin/sh",
                                           "--network", "none", str(ctx)],
                          env=env, encoding="utf-8", timeout=120)
    try:
        child.expect("the build succeeded; opening /bin/sh in a container of its result")
        child.expect(r"# ")
        child.sendline("echo at:$(pwd); cat r.txt")
        child.expect("at:/out")
        child.expect("built-remotely")
        child.sendline("exit")
        child.expect("the shell ended")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
