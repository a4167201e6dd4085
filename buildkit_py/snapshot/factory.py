"""Choosing a snapshotter: overlayfs where it mounts, else the copying one.

The probe mounts a tiny overlay once under the root and checks that writes land
in the upper dir and deletions become whiteouts; its result is cached in memory
and in ``<root>/overlay-probe`` (keyed by kernel release).
``BKPY_SNAPSHOTTER=overlayfs|native`` skips the probe.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import threading
from pathlib import Path

from buildkit_py.errors import UsageError
from buildkit_py.snapshot.base import DBSnapshotter
from buildkit_py.snapshot.errors import MountError
from buildkit_py.snapshot.mount import Mount, mount_all, unmount
from buildkit_py.snapshot.native import CopySnapshotter
from buildkit_py.snapshot.overlay import OverlaySnapshotter

ENV_VAR = "BKPY_SNAPSHOTTER"
_CHOICES: dict[str, type[DBSnapshotter]] = {
    "overlayfs": OverlaySnapshotter,
    "native": CopySnapshotter,
}
_probe_cache: dict[str, bool] = {}
_probe_lock = threading.Lock()


def _probe_once(base: Path) -> bool:
    tmp = Path(tempfile.mkdtemp(prefix="probe-", dir=base))
    merged = tmp / "merged"
    try:
        for d in ("l1", "l2", "upper", "work", "merged"):
            (tmp / d).mkdir()
        (tmp / "l1" / "gone").write_text("x")
        opts = (
            f"lowerdir={tmp / 'l2'}:{tmp / 'l1'}",
            f"upperdir={tmp / 'upper'}",
            f"workdir={tmp / 'work'}",
        )
        try:
            mount_all([Mount("overlay", "overlay", opts)], merged)
        except MountError:
            return False
        try:
            (merged / "new").write_text("y")
            (merged / "gone").unlink()
        finally:
            unmount(merged)
        st = os.lstat(tmp / "upper" / "gone")
        return (tmp / "upper" / "new").exists() and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    except OSError:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def overlay_supported(root: str | os.PathLike[str]) -> bool:
    """Whether overlay mounts work for directories under ``root`` (cached)."""
    base = Path(root).absolute()
    key = str(base)
    with _probe_lock:
        if key in _probe_cache:
            return _probe_cache[key]
        base.mkdir(parents=True, exist_ok=True)
        marker = base / "overlay-probe"
        release = os.uname().release
        try:
            cached_release, _, verdict = marker.read_text().partition(" ")
            if cached_release == release and verdict in ("yes", "no"):
                _probe_cache[key] = verdict == "yes"
                return _probe_cache[key]
        except (FileNotFoundError, ValueError):
            pass
        ok = _probe_once(base)
        marker.write_text(f"{release} {'yes' if ok else 'no'}")
        _probe_cache[key] = ok
        return ok


def open_snapshotter(root: str | os.PathLike[str]) -> DBSnapshotter:
    """The snapshotter for ``root``: ``<root>/overlayfs`` or ``<root>/native``."""
    base = Path(root)
    forced = os.environ.get(ENV_VAR, "").strip()
    if forced:
        cls = _CHOICES.get(forced)
        if cls is None:
            raise UsageError(
                f"{ENV_VAR}={forced!r} is not a snapshotter",
                hint=f"use one of: {', '.join(sorted(_CHOICES))}",
            )
    else:
        cls = OverlaySnapshotter if overlay_supported(base) else CopySnapshotter
    return cls(base / cls.name)
