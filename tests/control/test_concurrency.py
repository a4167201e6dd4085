"""Two clients building at once on one daemon share an identical expensive step."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.control.conftest import MakeDaemon, client_env

DOCKERFILE = """\
FROM busybox
RUN sleep 2 && cat /proc/sys/kernel/random/uuid > /run-id
COPY own.txt /own.txt
"""


def test_concurrent_clients_run_a_shared_step_once(tmp_path: Path,
                                                   make_daemon: MakeDaemon) -> None:
    import os

    env = {**os.environ, **client_env(tmp_path, make_daemon())}
    procs = []
    for name in ("one", "two"):
        ctx = tmp_path / name
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(DOCKERFILE)
        (ctx / "own.txt").write_text(name)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "buildkit_py", "build", "--progress", "plain",
             "-o", f"type=local,dest={tmp_path}/out-{name}", str(ctx)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    started = time.monotonic()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    took = time.monotonic() - started
    ids = {(tmp_path / f"out-{n}" / "run-id").read_text() for n in ("one", "two")}
    assert len(ids) == 1, "the RUN step ran twice"
    assert (tmp_path / "out-one" / "own.txt").read_text() == "one"
    assert (tmp_path / "out-two" / "own.txt").read_text() == "two"
    assert took < 2 * 2 + 6  # not two sleeps back to back (plus start-up on 2 cores)
