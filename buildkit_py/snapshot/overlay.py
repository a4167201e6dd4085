"""The overlayfs snapshotter.

A committed snapshot is one layer directory; an active snapshot mounts its
parent chain as ``lowerdir`` with a fresh ``upperdir``/``workdir``, and after the
run its upper dir is exactly the layer diff. A chain without parents is a plain
bind mount. Paths are ``<root>/snapshots/<id>/fs``, short enough that ``mount_all``
can fit 150+ lower layers into one page of options via relative paths.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from buildkit_py.snapshot.apply import apply_layer
from buildkit_py.snapshot.base import DBSnapshotter
from buildkit_py.snapshot.diff import LayerEntry, overlay_changes
from buildkit_py.snapshot.errors import SnapshotError
from buildkit_py.snapshot.metadata import Record
from buildkit_py.snapshot.mount import Mount
from buildkit_py.snapshot.types import ApplyResult, Kind

#: The kernel refuses more lower layers than this (OVL_MAX_STACK).
MAX_LOWER_LAYERS = 500

_PARAMS = Path("/sys/module/overlay/parameters")


def _feature_options() -> tuple[str, ...]:
    """Pin features that would make the upper dir not a plain diff (redirects,
    metacopy) or tie it to this filesystem (index) off, where the kernel knows them."""
    opts = []
    for name in ("index", "redirect_dir", "metacopy"):
        if (_PARAMS / name).exists():
            opts.append(f"{name}=off")
    return tuple(opts)


_FEATURES = _feature_options()


def _kernel_at_least(major: int, minor: int) -> bool:
    try:
        parts = os.uname().release.split(".")
        return (int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)) >= (
            major, minor)
    except (IndexError, ValueError):
        return False


# A writable layer is mounted "volatile" (Linux 5.10+): its unmount then skips the syncfs of
# the whole backing filesystem, which costs milliseconds per RUN (far more while other
# writers keep the disk busy). The layer is committed from the page cache, as buildah does
# for its build containers. The volatile marker stays in the work dir, which is never
# mounted again (a committed layer is only a lower dir).
_VOLATILE: tuple[str, ...] = ("volatile",) if _kernel_at_least(5, 10) else ()


class OverlaySnapshotter(DBSnapshotter):
    name = "overlayfs"

    def _work(self, sid: int) -> Path:
        return self._dir(sid) / "work"

    def _create_dirs(self, rec: Record, parent: Record | None) -> None:
        self._fs(rec.id).mkdir(0o755)
        if rec.kind is Kind.ACTIVE and parent is not None:
            self._work(rec.id).mkdir(0o700)
        depth = len(self._db.chain(rec.parent_id))
        if depth > MAX_LOWER_LAYERS:
            raise SnapshotError(
                f"snapshot chain of {depth} layers exceeds the overlayfs limit of "
                f"{MAX_LOWER_LAYERS}; squash the image"
            )

    def _mounts(self, rec: Record) -> list[Mount]:
        base = os.fspath(self.snapshots_dir)
        lowers = [f"{base}/{i}/fs" for i in self._db.chain(rec.parent_id)]
        fs = f"{base}/{rec.id}/fs"
        if rec.kind is Kind.ACTIVE:
            if not lowers:
                return [Mount("bind", fs, ("rbind", "rw"))]
            return [
                Mount(
                    "overlay",
                    "overlay",
                    (
                        *_FEATURES,
                        *_VOLATILE,
                        f"lowerdir={':'.join(lowers)}",
                        f"upperdir={fs}",
                        f"workdir={base}/{rec.id}/work",
                    ),
                )
            ]
        if not lowers:
            return [Mount("bind", fs, ("rbind", "ro"))]
        if len(lowers) == 1:
            return [Mount("bind", lowers[0], ("rbind", "ro"))]
        return [Mount("overlay", "overlay", ("ro", *_FEATURES, f"lowerdir={':'.join(lowers)}"))]

    def _before_commit(self, rec: Record) -> None:
        # The work dir (with the kernel's work/work and volatile marker) is left in place: a
        # committed layer is only ever a lower dir, and removing it here would cost five
        # metadata writes on the critical path of every step. It goes with the snapshot.
        pass

    def _changes(self, rec: Record) -> list[LayerEntry]:
        return overlay_changes(self._fs(rec.id), self._lowers(rec))

    def _apply(self, rec: Record, stream: BinaryIO) -> ApplyResult:
        lowers = self._lowers(rec)
        if not lowers:
            return self._plain_apply(rec, stream)
        return apply_layer(stream, self._fs(rec.id), overlay_upper=True, lowers=lowers)

    def lower_dirs(self, key: str) -> list[str]:
        """Layer directories below ``key`` (top first), e.g. for a bundle's rootfs."""
        return [os.fspath(p) for p in self._lowers(self._db.get(key))]
