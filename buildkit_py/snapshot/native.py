"""The copying ("native") snapshotter, for hosts where overlayfs cannot mount.

An active snapshot starts as a full copy of its parent (``cp -a``, reflinks where
the filesystem has them); commit records the diff against the parent by a double
walk so exporting a layer later does not walk both trees again.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import BinaryIO

from buildkit_py.snapshot.base import DBSnapshotter
from buildkit_py.snapshot.diff import ChangeKind, EntryKind, LayerEntry, diff
from buildkit_py.snapshot.errors import SnapshotError
from buildkit_py.snapshot.metadata import Record
from buildkit_py.snapshot.mount import Mount
from buildkit_py.snapshot.types import ApplyResult, Kind

_CHANGES_FILE = "changes.json"


def copy_tree(src: Path, dest: Path) -> None:
    """Copy ``src`` to new directory ``dest`` keeping owners, modes, times,
    xattrs, hardlinks, devices and symlinks."""
    proc = subprocess.run(
        ["cp", "-a", "--reflink=auto", "--", str(src), str(dest)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise SnapshotError(f"copying {src} to {dest} failed: {proc.stderr.strip()}")


class CopySnapshotter(DBSnapshotter):
    name = "native"

    def _create_dirs(self, rec: Record, parent: Record | None) -> None:
        if rec.kind is Kind.ACTIVE and parent is not None:
            copy_tree(self._fs(parent.id), self._fs(rec.id))
        else:
            self._fs(rec.id).mkdir(0o755)

    def _mounts(self, rec: Record) -> list[Mount]:
        if rec.kind is Kind.ACTIVE:
            return [Mount("bind", str(self._fs(rec.id)), ("rbind", "rw"))]
        # A view of a committed (immutable) parent needs no copy: it cannot be
        # removed while the view exists.
        src = self._fs(rec.parent_id) if rec.parent_id is not None else self._fs(rec.id)
        return [Mount("bind", str(src), ("rbind", "ro"))]

    def _parent_fs(self, rec: Record) -> Path | None:
        return self._fs(rec.parent_id) if rec.parent_id is not None else None

    def _before_commit(self, rec: Record) -> None:
        entries = diff(self._parent_fs(rec), self._fs(rec.id))
        data = [[e.path, e.kind.value, e.change.value] for e in entries]
        (self._dir(rec.id) / _CHANGES_FILE).write_text(json.dumps(data))

    def _changes(self, rec: Record) -> list[LayerEntry]:
        recorded = self._dir(rec.id) / _CHANGES_FILE
        if rec.kind is Kind.COMMITTED and recorded.exists():
            return [
                LayerEntry(p, EntryKind(k), ChangeKind(c))
                for p, k, c in json.loads(recorded.read_text())
            ]
        return diff(self._parent_fs(rec), self._fs(rec.id))

    def _apply(self, rec: Record, stream: BinaryIO) -> ApplyResult:
        return self._plain_apply(rec, stream)
