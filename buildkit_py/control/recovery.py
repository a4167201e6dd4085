"""Startup cleanup after a daemon that died without shutting down (SIGKILL, power loss).

The databases (sqlite, WAL) and the content store (write to ingest, then rename) are
crash-safe on their own; what a killed daemon leaves behind is live state of builds
that were running: containers still running in their own sessions, overlay mounts,
writable snapshots nobody will commit, and half-received context files. The daemon
owns its root exclusively (a lock), so at startup all of that is stale.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from buildkit_py.builder.core import Builder

_log = logging.getLogger(__name__)


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root).rstrip("/") + "/"
    found: list[str] = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                point = line.split()[4].encode().decode("unicode_escape")
                if point.startswith(prefix):
                    found.append(point)
    except OSError:
        return []
    return sorted(found, key=len, reverse=True)  # deepest first


def kill_stale_containers(runtime: Path, runtime_root: Path) -> int:
    """Force-delete containers a dead daemon left in the runtime's state directory."""
    if not runtime_root.is_dir():
        return 0
    count = 0
    for entry in sorted(os.listdir(runtime_root)):
        subprocess.run([str(runtime), "--root", str(runtime_root), "delete", "--force", entry],
                       stdin=subprocess.DEVNULL, capture_output=True, check=False, timeout=60)
        count += 1
    return count


def unmount_stale(root: Path) -> int:
    points = _mounts_under(root.absolute())
    for point in points:
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    return len(points)


def remove_uncommitted_snapshots(builder: Builder) -> int:
    from buildkit_py.snapshot.types import Kind

    stale = [info.key for info in builder.worker.sn.walk() if info.kind is not Kind.COMMITTED]
    for key in stale:
        with contextlib.suppress(Exception):
            builder.worker.sn.remove(key)
    return len(stale)


def recover_before_open(root: Path, runtime: Path | None) -> None:
    """What must happen before the builder opens its state."""
    if runtime is not None:
        n = kill_stale_containers(runtime, root / "worker" / "executor" / "runtime")
        if n:
            _log.warning("removed %d containers left by a previous daemon", n)
    n = unmount_stale(root)
    if n:
        _log.warning("unmounted %d mounts left by a previous daemon", n)
    still = _mounts_under(root.absolute())
    stale = [root / "worker" / "tmp", root / "control" / "builds",
             *(root / "control" / "contexts").glob("*/incoming")]
    for tmp in stale:
        # never recurse into something still mounted (a failed unmount)
        if tmp.is_dir() and not any(p.startswith(str(tmp.absolute()) + "/") for p in still):
            shutil.rmtree(tmp, ignore_errors=True)


def recover_after_open(builder: Builder) -> None:
    n = remove_uncommitted_snapshots(builder)
    if n:
        _log.warning("removed %d unfinished snapshots left by a previous daemon", n)
