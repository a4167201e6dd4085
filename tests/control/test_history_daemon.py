"""Builds on a ``daemon``-driver bkpyd are recorded in its root and outlive a restart."""

from __future__ import annotations

import json
from pathlib import Path

from tests.control.conftest import client_env, run_bkpy

DOCKERFILE = """\
FROM scratch
COPY --chmod=0755 busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "echo from-the-daemon"]
"""


def test_history_of_a_daemon_survives_its_restart(tmp_path: Path) -> None:
    env = client_env(tmp_path)
    root = tmp_path / "daemon-root"
    run_bkpy("builder", "create", "--name", "hist", "--driver", "daemon",
             "--driver-opt", f"root={root}", "--use", env=env)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "busybox").write_bytes(Path("/var/cache/bkpy-test/busybox-amd64").read_bytes())
    try:
        run_bkpy("build", "--network", "none", str(ctx), env=env)
        run_bkpy("builder", "stop", "hist", env=env)
        (record,) = json.loads(run_bkpy("history", "ls", "--format", "json", env=env).out)
        assert record["status"] == "completed"
        assert "from-the-daemon" in run_bkpy("history", "logs", env=env).out
        run_bkpy("build", "--network", "none", str(ctx), env=env)  # starts it again
        records = json.loads(run_bkpy("history", "ls", "--format", "json", env=env).out)
        assert [r["ref"] for r in records][1:] == [record["ref"]]
        assert records[0]["cached"] >= 1
    finally:
        run_bkpy("builder", "rm", "hist", env=env)
