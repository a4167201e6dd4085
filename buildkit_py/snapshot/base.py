"""Bookkeeping shared by the snapshotter implementations.

Records live in ``<root>/metadata.db``; snapshot ``N`` owns ``<root>/snapshots/N``.
A record is written before its directory and deleted before it, so a directory
without a record is debris from a crash and is removed on open.
"""

from __future__ import annotations

import os
import shutil
import stat
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from buildkit_py.snapshot.apply import apply_layer
from buildkit_py.snapshot.compression import Compression, LayerDescriptor, Writable
from buildkit_py.snapshot.diff import LayerEntry
from buildkit_py.snapshot.errors import SnapshotStateError
from buildkit_py.snapshot.layer_tar import export_layer
from buildkit_py.snapshot.metadata import Record, SnapshotDB
from buildkit_py.snapshot.mount import Mount
from buildkit_py.snapshot.types import ApplyResult, Info, Kind, Usage


def disk_usage(path: Path) -> Usage:
    """Allocated bytes and inodes under ``path`` (hardlinks counted once)."""
    seen: set[int] = set()
    size = 0
    inodes = 0
    stack = [str(path)]
    while stack:
        d = stack.pop()
        with os.scandir(d) as it:
            for e in it:
                st = e.stat(follow_symlinks=False)
                if st.st_ino in seen:
                    continue
                seen.add(st.st_ino)
                inodes += 1
                size += st.st_blocks * 512
                if stat.S_ISDIR(st.st_mode):
                    stack.append(e.path)
    return Usage(size, inodes)


class DBSnapshotter(ABC):
    """containerd-style prepare/view/commit/remove over numbered directories."""

    name = "base"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self.snapshots_dir = self.root / "snapshots"
        self.snapshots_dir.mkdir(parents=True, exist_ok=True)
        self._db = SnapshotDB(self.root / "metadata.db")
        self._remove_orphans()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> DBSnapshotter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # layout -----------------------------------------------------------------

    def _dir(self, sid: int) -> Path:
        return self.snapshots_dir / str(sid)

    def _fs(self, sid: int) -> Path:
        return self.snapshots_dir / str(sid) / "fs"

    def _remove_orphans(self) -> None:
        known = {str(i) for i in self._db.ids()}
        for entry in os.scandir(self.snapshots_dir):
            if entry.name not in known:
                shutil.rmtree(entry.path, ignore_errors=True)

    # the interface ----------------------------------------------------------

    def prepare(
        self, key: str, parent: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Mount]:
        """A writable snapshot on top of committed ``parent``."""
        return self._create(key, parent, Kind.ACTIVE, labels)

    def view(
        self, key: str, parent: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Mount]:
        """A read-only snapshot of committed ``parent``."""
        return self._create(key, parent, Kind.VIEW, labels)

    def _create(
        self, key: str, parent: str | None, kind: Kind, labels: Mapping[str, str] | None
    ) -> list[Mount]:
        rec, prec = self._db.insert(key, parent, kind, labels)
        try:
            self._dir(rec.id).mkdir()
            self._create_dirs(rec, prec)
        except BaseException:
            self._db.delete(key)
            shutil.rmtree(self._dir(rec.id), ignore_errors=True)
            raise
        return self._mounts(rec)

    def mounts(self, key: str) -> list[Mount]:
        rec = self._db.get(key)
        if rec.kind is Kind.COMMITTED:
            raise SnapshotStateError(
                f"snapshot {key!r} is committed; use view() to mount it read-only"
            )
        return self._mounts(rec)

    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None) -> None:
        """Turn active snapshot ``key`` into committed snapshot ``name``."""
        rec = self._active(key, "commit")
        self._before_commit(rec)
        usage = disk_usage(self._fs(rec.id))
        self._db.commit(key, name, usage.size, usage.inodes, labels)

    def remove(self, key: str) -> None:
        rec = self._db.delete(key)
        d = self._dir(rec.id)
        doomed = self.snapshots_dir / f"rm-{rec.id}"
        try:
            os.rename(d, doomed)
        except FileNotFoundError:
            return
        shutil.rmtree(doomed, ignore_errors=True)

    def stat(self, key: str) -> Info:
        return self._db.info(self._db.get(key))

    def layer_dir(self, key: str) -> Path:
        """The directory holding ``key``'s own files: an overlay layer's upper dir, or a
        copying snapshotter's whole tree (read it, never write into a committed one)."""
        return self._fs(self._db.get(key).id)

    def identity(self, key: str) -> str | None:
        """What tells committed snapshot ``key`` apart from any other snapshot ever given
        the same key (its record id, never reused, and creation time); None unless
        committed, since only an immutable snapshot's content can be memoized."""
        rec = self._db.get(key)
        if rec.kind is not Kind.COMMITTED:
            return None
        return f"{rec.id}:{rec.created!r}"

    def usage(self, key: str) -> Usage:
        rec = self._db.get(key)
        if rec.kind is Kind.COMMITTED and rec.size is not None and rec.inodes is not None:
            return Usage(rec.size, rec.inodes)
        return disk_usage(self._fs(rec.id))

    def walk(self) -> Iterator[Info]:
        for rec in self._db.all():
            yield self._db.info(rec)

    def changes(self, key: str) -> list[LayerEntry]:
        """The snapshot's change set relative to its parent, in tar order."""
        rec = self._db.get(key)
        if rec.kind is Kind.VIEW:
            raise SnapshotStateError(f"snapshot {key!r} is a view and has no changes")
        return self._changes(rec)

    def export_layer(
        self,
        key: str,
        dest: Writable,
        *,
        compression: Compression = Compression.GZIP,
        level: int | None = None,
        source_date_epoch: int | None = None,
    ) -> LayerDescriptor:
        """Write the snapshot's diff against its parent as a layer blob to ``dest``."""
        entries = self.changes(key)
        rec = self._db.get(key)
        return export_layer(
            entries, self._fs(rec.id), dest, compression=compression, level=level,
            source_date_epoch=source_date_epoch,
        )

    def apply_layer(self, key: str, stream: BinaryIO) -> ApplyResult:
        """Unpack a layer into active snapshot ``key`` (not mounted meanwhile)."""
        rec = self._active(key, "apply a layer to")
        return self._apply(rec, stream)

    def _active(self, key: str, action: str) -> Record:
        rec = self._db.get(key)
        if rec.kind is not Kind.ACTIVE:
            raise SnapshotStateError(f"cannot {action} snapshot {key!r}: it is {rec.kind.value}")
        return rec

    def _lowers(self, rec: Record) -> list[Path]:
        return [self._fs(i) for i in self._db.chain(rec.parent_id)]

    def _plain_apply(self, rec: Record, stream: BinaryIO) -> ApplyResult:
        return apply_layer(stream, self._fs(rec.id))

    # implementation hooks ---------------------------------------------------

    @abstractmethod
    def _create_dirs(self, rec: Record, parent: Record | None) -> None: ...

    @abstractmethod
    def _mounts(self, rec: Record) -> list[Mount]: ...

    @abstractmethod
    def _before_commit(self, rec: Record) -> None: ...

    @abstractmethod
    def _changes(self, rec: Record) -> list[LayerEntry]: ...

    @abstractmethod
    def _apply(self, rec: Record, stream: BinaryIO) -> ApplyResult: ...
