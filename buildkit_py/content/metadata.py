"""The content store's small sqlite sidecar: per-blob labels and leases.

Blobs themselves live as plain files; only what cannot be derived from a file
(labels such as ``containerd.io/uncompressed``, and which leases protect which
digests) is kept here. WAL mode lets several processes share it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from buildkit_py import sqlitedb

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS labels (
    digest TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (digest, key)
);
CREATE TABLE IF NOT EXISTS leases (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    expires REAL
);
CREATE TABLE IF NOT EXISTS lease_refs (
    lease_id TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    PRIMARY KEY (lease_id, digest)
);
"""
_MIGRATIONS = (_SCHEMA_V1,)


class ContentMetadata:
    """Thread-safe access to the labels/leases database, opened on first use (a cached
    build reads blobs only: it never opens it)."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._file = sqlitedb.LazyDatabase(path, _MIGRATIONS, foreign_keys=True)

    @property
    def _db(self) -> sqlite3.Connection:
        """The connection (the caller holds ``_lock``)."""
        return self._file.conn()

    def close(self) -> None:
        with self._lock:
            self._file.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, sqlitedb.write(self._db) as db:
            yield db

    # labels -----------------------------------------------------------------

    def labels(self, digest: str) -> dict[str, str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, value FROM labels WHERE digest = ? ORDER BY key", (digest,)
            ).fetchall()
        return dict(rows)

    def update_labels(self, digest: str, labels: Mapping[str, str | None]) -> None:
        with self._tx() as db:
            for key, value in labels.items():
                if value is None:
                    db.execute("DELETE FROM labels WHERE digest = ? AND key = ?", (digest, key))
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO labels (digest, key, value) VALUES (?, ?, ?)",
                        (digest, key, value),
                    )

    def label_values(self, key: str, digests: Iterable[str]) -> dict[str, str]:
        """Label ``key`` of each of ``digests`` that has it, in one query."""
        wanted = list(dict.fromkeys(digests))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        with self._lock:
            rows = self._db.execute(
                f"SELECT digest, value FROM labels WHERE key = ? AND digest IN ({marks})",
                (key, *wanted),
            ).fetchall()
        return dict(rows)

    def set_label_values(self, key: str, values: Mapping[str, str]) -> None:
        """Label ``key`` of several blobs (digest -> value), in one transaction."""
        if not values:
            return
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO labels (digest, key, value) VALUES (?, ?, ?)",
                [(digest, key, value) for digest, value in values.items()],
            )

    def forget(self, digests: Iterable[str]) -> None:
        with self._tx() as db:
            db.executemany("DELETE FROM labels WHERE digest = ?", [(d,) for d in digests])

    # leases -----------------------------------------------------------------

    def create_lease(self, lease_id: str, expires: float | None) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO leases (id, created, expires) VALUES (?, ?, ?)",
                (lease_id, time.time(), expires),
            )

    def delete_lease(self, lease_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM leases WHERE id = ?", (lease_id,))

    def add_to_lease(self, lease_id: str, digest: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO lease_refs (lease_id, digest) VALUES (?, ?)",
                (lease_id, digest),
            )

    def lease_ids(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT id FROM leases ORDER BY id")]

    def leased_digests(self, now: float) -> set[str]:
        """Digests held by live leases; expired leases are dropped on the way."""
        with self._tx() as db:
            db.execute("DELETE FROM leases WHERE expires IS NOT NULL AND expires < ?", (now,))
            rows = db.execute("SELECT DISTINCT digest FROM lease_refs").fetchall()
        return {r[0] for r in rows}
