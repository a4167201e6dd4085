"""A daemon killed with SIGKILL mid-build restarts consistent; SIGTERM shuts down cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.control.conftest import MakeDaemon, client_env, run_bkpy


def _running_containers(root: Path) -> list[str]:
    state = root / "worker" / "executor" / "runtime"
    return os.listdir(state) if state.is_dir() else []


def test_sigkill_mid_build_then_restart_rebuilds_and_du_is_consistent(
        tmp_path: Path, make_daemon: MakeDaemon) -> None:
    daemon = make_daemon()
    env = client_env(tmp_path, daemon)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo before > /before\n"
                                    "RUN sleep 60\n")
    client = subprocess.Popen([sys.executable, "-m", "buildkit_py", "build", "--progress",
                               "plain", str(ctx)], env={**os.environ, **env},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _running_containers(daemon.root):
        assert time.monotonic() < deadline, "the RUN never started"
        assert client.poll() is None, client.communicate()
        time.sleep(0.1)
    daemon.kill()
    _, err = client.communicate(timeout=60)
    assert client.returncode != 0
    assert "Traceback" not in err

    restarted = make_daemon()  # same name: same root and socket
    assert _running_containers(restarted.root) == []  # the orphaned RUN was killed
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo before > /before\n"
                                    "RUN echo after > /after\n")
    run_bkpy("build", "--progress", "plain", "-o", f"type=local,dest={tmp_path}/out",
             str(ctx), env=env)
    assert (tmp_path / "out" / "before").read_text() == "before\n"
    assert (tmp_path / "out" / "after").read_text() == "after\n"
    du = run_bkpy("du", "--verbose", env=env).out
    assert "RUN echo after > /after" in du
    restarted.stop()

    # every cache record points at a snapshot that exists, and no half-made one is left
    from buildkit_py.snapshot import open_snapshotter
    from buildkit_py.snapshot.types import Kind
    from buildkit_py.solver.cache import CacheManager

    with CacheManager(restarted.root / "solver") as cache, \
            open_snapshotter(restarted.root / "worker" / "snapshots") as sn:
        snaps = {info.key: info.kind for info in sn.walk()}
        for entry in cache.usage().entries:
            if entry.result_id.startswith("snap:"):
                assert snaps.get(entry.result_id.removeprefix("snap:")) is Kind.COMMITTED

    final = make_daemon()
    pruned = run_bkpy("prune", "--all", "-f", env=env).out
    assert "Total:" in pruned
    after = run_bkpy("du", env=env).out
    assert "snap:" not in after
    run_bkpy("build", "--progress", "quiet", str(ctx), env=env)
    final.stop()


def test_sigterm_shuts_down_cleanly(tmp_path: Path, make_daemon: MakeDaemon) -> None:
    daemon = make_daemon(busybox=False)
    sock = Path(daemon.endpoint.removeprefix("unix://"))
    assert sock.exists()
    assert daemon.stop() == 0
    assert not sock.exists()
    assert "shutting down" in daemon.log.read_text()


def test_one_owner_per_root_daemon_or_embedded(tmp_path: Path,
                                               make_daemon: MakeDaemon) -> None:
    daemon = make_daemon(busybox=False)
    assert daemon.proc is not None
    lock = daemon.root / "embedded.lock"
    assert lock.read_text() == f"bkpyd pid {daemon.proc.pid}"
    second = subprocess.run(
        [sys.executable, "-m", "buildkit_py.control.daemon", "--root", str(daemon.root),
         "--addr", f"unix://{tmp_path}/second.sock"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert second.returncode != 0
    assert f"is in use by another bkpyd or bkpy command (bkpyd pid {daemon.proc.pid})" \
        in second.stderr
    assert "Traceback" not in second.stderr
    assert daemon.stop() == 0
    assert lock.read_text() == ""  # a clean exit: the next owner has nothing to clean up
    du = run_bkpy("du", env={"BKPY_ROOT": str(daemon.root),
                             "BKPY_CONFIG": str(tmp_path / "client")})
    assert "did not exit cleanly" not in du.err
