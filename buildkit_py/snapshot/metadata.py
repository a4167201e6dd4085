"""Snapshot records in a sqlite database (WAL) under the snapshotter root.

Each snapshot gets a small integer id that names its directory
(``<root>/snapshots/<id>``), which keeps overlay mount options short.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from buildkit_py import sqlitedb
from buildkit_py.snapshot.errors import (
    SnapshotError,
    SnapshotExistsError,
    SnapshotNotFoundError,
)
from buildkit_py.snapshot.types import Info, Kind

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    parent_id INTEGER REFERENCES snapshots(id),
    kind TEXT NOT NULL,
    created REAL NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    size INTEGER,
    inodes INTEGER
);
CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent_id);
"""
_MIGRATIONS = (_SCHEMA_V1,)


@dataclass(frozen=True)
class Record:
    id: int
    key: str
    parent_id: int | None
    kind: Kind
    created: float
    labels: dict[str, str]
    size: int | None
    inodes: int | None


def _record(row: tuple[int, str, int | None, str, float, str, int | None, int | None]) -> Record:
    return Record(row[0], row[1], row[2], Kind(row[3]), row[4], json.loads(row[5]), row[6],
                  row[7])


_COLUMNS = "id, key, parent_id, kind, created, labels, size, inodes"


class SnapshotDB:
    def __init__(self, path: Path) -> None:
        self._lock = threading.RLock()
        self._db = sqlitedb.open_db(path, _MIGRATIONS)
        # Committed snapshots never change parents, so chains can be cached.
        self._chains: dict[int, tuple[int, ...]] = {}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, sqlitedb.write(self._db) as db:
            yield db

    def find(self, key: str) -> Record | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM snapshots WHERE key = ?", (key,)
            ).fetchone()
        return _record(row) if row else None

    def get(self, key: str) -> Record:
        rec = self.find(key)
        if rec is None:
            raise SnapshotNotFoundError(f"snapshot {key!r} not found")
        return rec

    def by_id(self, sid: int) -> Record:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM snapshots WHERE id = ?", (sid,)
            ).fetchone()
        if row is None:
            raise SnapshotNotFoundError(f"snapshot #{sid} not found")
        return _record(row)

    def insert(self, key: str, parent: str | None, kind: Kind,
               labels: Mapping[str, str] | None) -> tuple[Record, Record | None]:
        """Create a record; returns it and its (committed) parent."""
        with self.tx() as db:
            if db.execute("SELECT 1 FROM snapshots WHERE key = ?", (key,)).fetchone():
                raise SnapshotExistsError(f"snapshot {key!r} already exists")
            parent_rec: Record | None = None
            if parent:
                row = db.execute(
                    f"SELECT {_COLUMNS} FROM snapshots WHERE key = ?", (parent,)
                ).fetchone()
                if row is None:
                    raise SnapshotNotFoundError(f"parent snapshot {parent!r} not found")
                parent_rec = _record(row)
                if parent_rec.kind is not Kind.COMMITTED:
                    raise SnapshotError(
                        f"parent {parent!r} is {parent_rec.kind.value}; only committed "
                        "snapshots can be parents"
                    )
            cur = db.execute(
                "INSERT INTO snapshots (key, parent_id, kind, created, labels) "
                "VALUES (?, ?, ?, ?, ?)",
                (key, parent_rec.id if parent_rec else None, kind.value, time.time(),
                 json.dumps(dict(labels or {}), sort_keys=True)),
            )
            sid = cur.lastrowid
            assert sid is not None
        return self.by_id(sid), parent_rec

    def commit(self, key: str, name: str, size: int, inodes: int,
               labels: Mapping[str, str] | None) -> None:
        with self.tx() as db:
            if db.execute("SELECT 1 FROM snapshots WHERE key = ?", (name,)).fetchone():
                raise SnapshotExistsError(f"snapshot {name!r} already exists")
            row = db.execute(f"SELECT {_COLUMNS} FROM snapshots WHERE key = ?",
                             (key,)).fetchone()
            if row is None:
                raise SnapshotNotFoundError(f"snapshot {key!r} not found")
            rec = _record(row)
            new_labels = rec.labels if labels is None else dict(labels)
            db.execute(
                "UPDATE snapshots SET key = ?, kind = ?, size = ?, inodes = ?, labels = ? "
                "WHERE id = ?",
                (name, Kind.COMMITTED.value, size, inodes,
                 json.dumps(new_labels, sort_keys=True), rec.id),
            )

    def delete(self, key: str) -> Record:
        with self.tx() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM snapshots WHERE key = ?",
                             (key,)).fetchone()
            if row is None:
                raise SnapshotNotFoundError(f"snapshot {key!r} not found")
            rec = _record(row)
            child = db.execute(
                "SELECT key FROM snapshots WHERE parent_id = ? LIMIT 1", (rec.id,)
            ).fetchone()
            if child:
                raise SnapshotError(
                    f"cannot remove snapshot {key!r}: snapshot {child[0]!r} depends on it"
                )
            db.execute("DELETE FROM snapshots WHERE id = ?", (rec.id,))
        self._chains.pop(rec.id, None)
        return rec

    def chain(self, sid: int | None) -> tuple[int, ...]:
        """Ids from ``sid`` down to the base layer (top first)."""
        if sid is None:
            return ()
        hit = self._chains.get(sid)
        if hit is not None:
            return hit
        with self._lock:
            rows = self._db.execute(
                "WITH RECURSIVE c(id, parent_id, depth) AS ("
                " SELECT id, parent_id, 0 FROM snapshots WHERE id = ?"
                " UNION ALL SELECT s.id, s.parent_id, c.depth + 1 FROM snapshots s"
                " JOIN c ON s.id = c.parent_id)"
                " SELECT id FROM c ORDER BY depth",
                (sid,),
            ).fetchall()
        chain = tuple(r[0] for r in rows)
        self._chains[sid] = chain
        return chain

    def all(self) -> list[Record]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM snapshots ORDER BY id").fetchall()
        return [_record(r) for r in rows]

    def ids(self) -> set[int]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT id FROM snapshots")}

    def info(self, rec: Record) -> Info:
        parent = self.by_id(rec.parent_id).key if rec.parent_id is not None else None
        return Info(rec.key, parent, rec.kind, rec.created, dict(rec.labels))
