"""A remote build handed to the warm command server: its forked worker dials bkpyd itself."""

from __future__ import annotations

from pathlib import Path

from tests.control.conftest import Daemon, client_env, run_bkpy


def test_remote_build_through_the_command_server(tmp_path: Path,
                                                 shared_daemon: Daemon) -> None:
    env = client_env(tmp_path, shared_daemon)
    env["BKPY_NO_SERVER"] = "0"  # the rest of the suite runs without (tests/conftest.py)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY hello /hello\nRUN cat /hello\n")
    (ctx / "hello").write_text("hi from the client\n")
    assert "started" in run_bkpy("server", "start", "--idle-timeout", "0", env=env).out
    try:
        for _ in range(2):  # a second worker forked from the same server works too
            out = tmp_path / "out"
            r = run_bkpy("build", "--progress", "plain", "-o", f"type=local,dest={out}",
                         str(ctx), env=env)
            assert (out / "hello").read_text() == "hi from the client\n"
            assert "transferring context" in r.err
        log = Path(run_bkpy("server", "status", env=env).out.split("log ")[1].rstrip(")\n"))
        assert log.read_text().count(": bkpy build") == 2
    finally:
        run_bkpy("server", "stop", env=env, check=False)
