"""Cleaning up what an owner of a state root left behind when it died (kill -9, OOM, crash).

The databases (sqlite, WAL) and the content store (write to ingest, then rename) stay
consistent on their own. What does not is the live state of the builds that were running:

* containers: a RUN's processes run in their own session under the runtime, so killing
  ``bkpy``/``bkpyd`` does not reach them; they keep running, writing into their layer. Each
  is deleted through the runtime, which kills it;
* bundles (spec, hosts, resolv.conf, secrets) of those containers and of ones that ended
  on their own after the owner died, on tmpfs;
* overlay mounts on the worker's mount points (``<root>/worker/tmp``) and their scratch
  dirs; only mounts bkpy makes are touched, never one an admin put under the root;
* snapshots: writable ones and views nobody will commit, and layers a step committed
  whose cache record was never written, which ``bkpy du`` cannot show;
* the daemon's scratch dirs: half-received contexts and per-build dirs.

Only the root's owner calls this (:mod:`ownership`), before it runs anything, so all of
it is stale; :mod:`ownership` decides when it is needed at all.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from buildkit_py.builder.snapshot_sweep import sweep_unneeded_snapshots
from buildkit_py.snapshot.mount import MountError, unmount
from buildkit_py.snapshot.types import Kind
from buildkit_py.worker.snapshots import is_step_layer

if TYPE_CHECKING:
    from buildkit_py.builder.core import Builder

_log = logging.getLogger(__name__)
_RUNTIME_TIMEOUT = 60


def _worker_mount(point: str, worker: Path) -> bool:
    """Whether ``point`` is (or lies under) a mount point the worker makes: the worker's
    mount points and scratch dirs, and the snapshotter's overlay probe."""
    tmp = str(worker / "tmp") + "/"
    probe = str(worker / "snapshots") + "/probe-"
    return point.startswith(tmp) or point.startswith(probe)


def _mount_points() -> list[str]:
    found: list[str] = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                # the kernel writes space, tab, newline and backslash as \\ooo
                found.append(line.split()[4].encode().decode("unicode_escape"))
    except OSError:
        return []
    return found


def worker_mounts(root: Path) -> list[str]:
    """Mounts bkpy made under ``root`` that are still there, deepest first."""
    worker = root.absolute() / "worker"
    return sorted((p for p in _mount_points() if _worker_mount(p, worker)),
                  key=len, reverse=True)


def stale_containers(root: Path) -> list[str]:
    """Ids of the containers in ``root``'s runtime state directory."""
    state = root / "worker" / "executor" / "runtime"
    try:
        return sorted(os.listdir(state))
    except OSError:  # none yet, or a link into a tmpfs a reboot emptied
        return []


def delete_containers(root: Path, runtime: str, ids: list[str]) -> None:
    """Kill and delete containers ``ids`` through ``runtime``."""
    # reason: the OCI executor (~10 ms) loads only to clean up after a dead owner
    from buildkit_py.executor.executor import resolve_runtime, runtime_command

    argv = [*runtime_command(runtime, resolve_runtime(runtime)),
            "--root", str(root / "worker" / "executor" / "runtime")]
    for cid in ids:
        subprocess.run([*argv, "delete", "--force", cid], stdin=subprocess.DEVNULL,
                       capture_output=True, check=False, timeout=_RUNTIME_TIMEOUT)


def stale_bundles(root: Path) -> list[Path]:
    """Bundles of containers whose rootfs was mounted under ``root``: the executor removes
    a bundle after its container, so any found belonged to a dead owner. (The tmpfs bundle
    directory is shared by every root: a bundle is told apart by its spec's rootfs.)"""
    # reason: the OCI executor (~10 ms) loads only to clean up after a dead owner
    from buildkit_py.executor.executor import bundle_roots

    tmp = str(root.absolute() / "worker" / "tmp") + "/"
    found: list[Path] = []
    for parent in bundle_roots(root / "worker" / "executor"):
        try:
            entries = list(os.scandir(parent))
        except OSError:
            continue
        for entry in entries:
            try:
                with open(os.path.join(entry.path, "config.json"), "rb") as f:
                    rootfs = json.load(f)["root"]["path"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if isinstance(rootfs, str) and rootfs.startswith(tmp):
                found.append(Path(entry.path))
    return found


def unmount_all(points: list[str]) -> None:
    for point in points:
        with contextlib.suppress(MountError):
            unmount(point)  # lazily detached when still busy


def recover_before_open(root: Path, runtime: str) -> None:
    """What must happen before the builder opens its state: no process, mount or scratch
    dir of the dead owner is left."""
    ids = stale_containers(root)
    if ids:
        delete_containers(root, runtime, ids)
        _log.warning("removed %d container(s) left running", len(ids))
    for bundle in stale_bundles(root):
        shutil.rmtree(bundle, ignore_errors=True)
    points = worker_mounts(root)
    if points:
        unmount_all(points)
        _log.warning("unmounted %d mount(s) left behind", len(points))
    still = worker_mounts(root)
    scratch = [root / "worker" / "tmp", root / "control" / "builds",
               *(root / "control" / "contexts").glob("*/incoming")]
    for path in scratch:
        # never recurse into something still mounted (an unmount that failed)
        inside = str(path.absolute()) + "/"
        if path.is_dir() and not any(p.startswith(inside) for p in still):
            shutil.rmtree(path, ignore_errors=True)


def remove_uncommitted_snapshots(builder: Builder) -> int:
    stale = [info.key for info in builder.worker.sn.walk() if info.kind is not Kind.COMMITTED]
    for key in stale:
        with contextlib.suppress(Exception):
            builder.worker.sn.remove(key)
    return len(stale)


def recover_after_open(builder: Builder) -> None:
    """What needs the opened builder: the snapshots no build will finish or use."""
    n = remove_uncommitted_snapshots(builder)
    if n:
        _log.warning("removed %d unfinished snapshot(s)", n)
    n = sweep_unneeded_snapshots(builder.worker.sn, builder.cache, only=is_step_layer)
    if n:
        _log.warning("removed %d layer(s) committed but never recorded", n)
