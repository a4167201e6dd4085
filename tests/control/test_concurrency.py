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


def _sleepers(tag: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if tag in line and "sleep" in line]


def test_a_client_that_disconnects_cancels_only_its_own_build(tmp_path: Path,
                                                             make_daemon: MakeDaemon) -> None:
    import os

    env = {**os.environ, **client_env(tmp_path, make_daemon())}

    def start(name: str, dockerfile: str) -> subprocess.Popen[str]:
        ctx = tmp_path / name
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(dockerfile)
        return subprocess.Popen(
            [sys.executable, "-m", "buildkit_py", "build", "--progress", "plain",
             "-o", f"type=local,dest={tmp_path}/out-{name}", str(ctx)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # a build of its own, killed mid-step: its container must go away
    lone = start("lone", "FROM busybox\nRUN sleep 61 && echo lone > /lone\n")
    shared_df = "FROM busybox\nRUN sleep 5 && echo shared-7 > /shared\n"
    keeper = start("keeper", shared_df)
    leaver = start("leaver", shared_df)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (_sleepers("61") and _sleepers("5 &&")):
        time.sleep(0.2)
    assert _sleepers("61"), "the lone build never started its step"
    lone.kill()
    leaver.kill()
    lone.wait()
    leaver.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _sleepers("61"):
        time.sleep(0.2)
    assert not _sleepers("61"), "the disconnected client's container still runs"
    _, err = keeper.communicate(timeout=120)
    assert keeper.returncode == 0, err
    assert (tmp_path / "out-keeper" / "shared").read_text() == "shared-7\n"
