"""A ``bkpy build`` (embedded, no daemon) killed with SIGKILL mid-RUN leaves a running
container, an overlay mount and an unfinished 50 MB snapshot; the next command on that root
(here ``bkpy du``) removes them all, ``du`` then accounts for every snapshot on disk, and
``prune -a`` gives the space back."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.conftest import Bkpy

# WROTE-"BIG": the quotes keep the marker out of the step's name, which the progress prints
# before the step runs
DOCKERFILE = """\
FROM busybox
ARG NAP=300
RUN echo before > /before
RUN dd if=/dev/zero of=/big bs=1M count=50 && echo WROTE-"BIG" && sleep $NAP
"""
_UNITS = {"B": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9}


def _env(root: Path) -> dict[str, str]:
    env = dict(os.environ, BKPY_ROOT=str(root), BKPY_CONFIG=str(root / "client"),
               BKPY_NO_SERVER="1")
    env.pop("BKPY_DEBUG", None)
    return env


def _overlay_mounts(root: Path) -> list[str]:
    prefix = str(root.absolute()) + "/"
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefix)]


def _containers(root: Path) -> list[str]:
    state = root / "worker" / "executor" / "runtime"
    return os.listdir(state) if state.is_dir() else []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _container_pids(root: Path) -> list[int]:
    """The init pids of the containers in ``root``'s runtime state, as the runtime says."""
    from buildkit_py.executor.executor import resolve_runtime, runtime_command

    argv = [*runtime_command("bkpy-runc", resolve_runtime("bkpy-runc")),
            "--root", str(root / "worker" / "executor" / "runtime"), "state"]
    pids = []
    for cid in _containers(root):
        state = subprocess.run([*argv, cid], capture_output=True, text=True, check=True)
        pids.append(int(json.loads(state.stdout)["pid"]))
    return [pid for pid in pids if _alive(pid)]


def _snapshot_kinds(root: Path) -> list[str]:
    from buildkit_py.snapshot import open_snapshotter

    with open_snapshotter(root / "worker" / "snapshots") as sn:
        return [str(info.kind) for info in sn.walk()]


def _bytes_on_disk(path: Path, *, apparent: bool = False) -> int:
    """Space used under ``path`` (allocated blocks; ``apparent``: file sizes, which do not
    depend on when the filesystem gets round to allocating a file just written)."""
    seen: set[int] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [*dirnames, *filenames]:
            st = os.lstat(os.path.join(dirpath, name))
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_size if apparent else st.st_blocks * 512
    return total


def _snapshot_dirs(root: Path) -> list[Path]:
    return list((root / "worker" / "snapshots").glob("*/snapshots/*"))


def _du_snapshot_bytes(out: str) -> int:
    """The sizes of the snapshot records in ``bkpy du``'s table."""
    total = 0
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0].startswith("snap:"):
            m = re.fullmatch(r"([\d.]+)(B|kB|MB|GB)", fields[2])
            assert m, line
            total += int(float(m[1]) * _UNITS[m[2]])
    return total


def _stale_bundles(root: Path) -> list[str]:
    from buildkit_py.executor.executor import bundle_roots

    prefix = str(root.absolute()) + "/"
    found = []
    for parent in bundle_roots(root / "worker" / "executor"):
        for spec in parent.glob("*/config.json"):
            try:
                if json.loads(spec.read_text())["root"]["path"].startswith(prefix):
                    found.append(spec.parent.name)
            except (OSError, ValueError, KeyError):
                continue
    return found


def test_sigkill_mid_run_then_next_command_cleans_up(fresh_bkpy: Bkpy, tmp_path: Path) -> None:
    root = tmp_path / "state"  # fresh_bkpy's root, busybox imported
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    log_path = tmp_path / "build.log"
    with open(log_path, "w") as log:
        build = subprocess.Popen(
            [sys.executable, "-m", "buildkit_py", "build", "--progress", "plain", str(ctx)],
            env=_env(root), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 120
        while "WROTE-BIG" not in log_path.read_text() or not _container_pids(root):
            assert build.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, f"the RUN never got going:\n{log_path.read_text()}"
            time.sleep(0.05)
    finally:
        build.send_signal(signal.SIGKILL)
        build.wait(timeout=30)

    # what the killed build left: its RUN still running, mounts, an unfinished snapshot
    survivors = _container_pids(root)
    assert survivors, "the RUN's processes died with bkpy: nothing here tests their clean-up"
    assert _overlay_mounts(root)
    assert _containers(root)
    assert "active" in _snapshot_kinds(root)
    leaked = _bytes_on_disk(root / "worker" / "snapshots", apparent=True)

    du = fresh_bkpy("du")
    assert "did not exit cleanly" in du.err
    assert "Traceback" not in du.err

    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in survivors):
        assert time.monotonic() < deadline, f"RUN processes survived: {survivors}"
        time.sleep(0.05)
    assert _overlay_mounts(root) == []
    assert _containers(root) == []
    assert _stale_bundles(root) == []
    assert set(_snapshot_kinds(root)) == {"committed"}
    assert list((root / "worker" / "tmp").glob("*")) == []
    # du accounts for what is on disk: the 50 MB written by the killed RUN is gone
    on_disk = sum(_bytes_on_disk(d) for d in _snapshot_dirs(root))
    assert leaked - on_disk > 45 * 10**6
    assert abs(on_disk - _du_snapshot_bytes(du.out)) < 10**6, (on_disk, du.out)
    # the next command finds the root clean: no second recovery
    assert "did not exit cleanly" not in fresh_bkpy("du").err

    out = tmp_path / "out"
    rebuilt = fresh_bkpy("build", "--progress", "plain", "--build-arg", "NAP=0",
                         "-o", f"type=local,dest={out}", str(ctx))
    assert "did not exit cleanly" not in rebuilt.err
    assert (out / "before").read_text() == "before\n"
    assert (out / "big").stat().st_size == 50 * 2**20

    fresh_bkpy("prune", "--all", "--force")
    after = fresh_bkpy("du")
    assert _du_snapshot_bytes(after.out) == 0
    assert _snapshot_dirs(root) == []
    assert _bytes_on_disk(root / "worker" / "snapshots") < 10**6


def test_layer_committed_but_never_recorded_is_swept(fresh_bkpy: Bkpy, tmp_path: Path) -> None:
    """An owner killed between committing a step's layer and writing its cache record
    leaves a snapshot ``du`` cannot show; the next owner removes it, and nothing else (the
    image unpacked by ``image import`` stays for the first build)."""
    from buildkit_py.snapshot import open_snapshotter
    from buildkit_py.worker.snapshots import new_key

    root = tmp_path / "state"
    before = fresh_bkpy("du").out
    orphan = new_key("layer")
    with open_snapshotter(root / "worker" / "snapshots") as sn:
        sn.prepare("active-orphan")
        (sn.layer_dir("active-orphan") / "blob").write_bytes(b"x" * 5 * 2**20)
        sn.commit(orphan, "active-orphan")
        kept = {info.key for info in sn.walk()} - {orphan}
    assert any(key.startswith("img-") for key in kept)
    (root / "embedded.lock").write_text("bkpy pid 999999")  # as a killed owner leaves it

    du = fresh_bkpy("du")
    assert "bkpy pid 999999" in du.err
    assert "removed 1 layer(s) committed but never recorded" in du.err
    # the same records (the LAST ACCESSED column ages between the two calls)
    assert [line.split()[:3] for line in du.out.splitlines()] == \
        [line.split()[:3] for line in before.splitlines()]
    with open_snapshotter(root / "worker" / "snapshots") as sn:
        assert {info.key for info in sn.walk()} == kept
    assert (root / "embedded.lock").read_text() == ""
