"""Persistent cache records: cache key -> worker result id, in sqlite under the state dir.

Tables
  results  one row per stored result (id, size, created, last_used, description)
  records  cache key -> result id (several keys may share a result)
  keys     what an edge key was made of: cache-map digest, output index
  links    per key and input: the input's key (or content digest) and selectors
  steps    per stable step slot (see ``solver/explain.py``): the key it last ran with
           and the op handler's change summary, to explain the next miss of that slot

``keys``/``links`` form the key graph that explains a hit or miss and that a cache
exporter walks. The database runs in WAL mode so readers never wait for the writer; each
thread gets its own connection, writes use ``BEGIN IMMEDIATE`` and a busy timeout, which
makes one database safe to share between threads and processes (CLI and daemon).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from buildkit_py import sqlitedb
from buildkit_py.solver.cache_key import KeyInput
from buildkit_py.solver.worker import Result

DB_NAME = "cache.db"
TOUCH_INTERVAL = 60.0  # seconds; how stale last_used may get before a hit refreshes it
_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS results (
    id TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    created REAL NOT NULL,
    last_used REAL NOT NULL,
    description TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS records (
    key TEXT PRIMARY KEY,
    result_id TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_result ON records(result_id);
CREATE TABLE IF NOT EXISTS keys (
    key TEXT PRIMARY KEY,
    cachemap_digest TEXT NOT NULL,
    output INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS links (
    key TEXT NOT NULL,
    input INTEGER NOT NULL,
    input_key TEXT NOT NULL,
    content INTEGER NOT NULL,
    selectors TEXT NOT NULL,
    PRIMARY KEY (key, input)
);
"""
# links.source: a content input's own edge key (see KeyInput.source)
# checksums: the same, learnt from an imported cache (no local record links them yet)
_SCHEMA_V2 = """
ALTER TABLE links ADD COLUMN source TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS links_by_source ON links(source) WHERE source != '';
CREATE TABLE IF NOT EXISTS checksums (
    source TEXT NOT NULL,
    selectors TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (source, selectors)
);
"""
# The last run of each step slot (solver/explain.py); its cache-map digest and input
# links are the ``keys`` / ``links`` rows of ``edge_key`` (not stored twice).
_SCHEMA_V3 = """
CREATE TABLE IF NOT EXISTS steps (
    slot TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    edge_key TEXT NOT NULL,
    summary TEXT NOT NULL,
    updated REAL NOT NULL
);
"""
_MIGRATIONS = (_SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3)


@dataclass(frozen=True, slots=True)
class CacheRecord:
    """A cache hit: ``key`` maps to the stored result ``result_id``."""

    key: str
    result_id: str
    size: int
    created: float
    last_used: float
    description: str


@dataclass(frozen=True, slots=True)
class UsageEntry:
    """One stored result as ``bkpy du`` shows it."""

    result_id: str
    size: int
    created: float
    last_used: float
    description: str
    keys: int
    in_use: bool

    @property
    def reclaimable(self) -> bool:
        return not self.in_use


@dataclass(frozen=True, slots=True)
class CacheUsage:
    entries: tuple[UsageEntry, ...]

    @property
    def total(self) -> int:
        return sum(e.size for e in self.entries)

    @property
    def reclaimable(self) -> int:
        return sum(e.size for e in self.entries if e.reclaimable)


@dataclass(frozen=True, slots=True)
class PrunedResult:
    """A result whose records were deleted; the worker should delete its snapshot."""

    result_id: str
    size: int
    description: str


@dataclass(frozen=True, slots=True)
class KeyLink:
    input: int
    input_key: str
    content: bool
    selectors: tuple[str, ...]
    source: str = ""  # a content input's own edge key, when recorded


@dataclass(frozen=True, slots=True)
class StepRecord:
    """The last run of a step slot: its vertex key, output-0 edge key, op summary."""

    slot: str
    key: str
    edge_key: str
    summary: str


class CacheManager:
    """Cache records of one state directory (``<root>/cache.db``).

    Results held by a running build are marked in use (in this process) and are never
    pruned; the worker deletes the snapshots of what :meth:`prune` returns.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / DB_NAME
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._in_use: dict[str, int] = {}
        self._in_use_lock = threading.Lock()
        self._closed = False
        conn = sqlitedb.connect(self.path)
        self._conns.append(conn)
        sqlitedb.enable_wal(conn)
        sqlitedb.migrate(conn, _MIGRATIONS)
        # The first thread to query takes this connection (the creating thread is often
        # not one that queries: the solver's are), so no thread opens one needlessly.
        self._spare: sqlite3.Connection | None = conn

    # ------------------------------------------------------------ connections

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise RuntimeError("cache manager is closed")
            with self._conns_lock:
                conn, self._spare = self._spare, None
            if conn is None:
                conn = sqlitedb.connect(self.path)
                with self._conns_lock:
                    self._conns.append(conn)
            self._local.conn = conn
        return conn

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return sqlitedb.write(self._conn())

    def close(self) -> None:
        """Close every thread's connection (the manager is unusable afterwards)."""
        self._closed = True
        with self._conns_lock:
            conns, self._conns = self._conns, []
            self._spare = None
        for c in conns:
            c.close()
        self._local = threading.local()

    def __enter__(self) -> CacheManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ records

    def load(self, key: str) -> CacheRecord | None:
        """The record for ``key`` (marking its result used now), or None on a miss."""
        row = self._conn().execute(
            "SELECT r.result_id, s.size, s.created, s.description, s.last_used FROM records r "
            "JOIN results s ON s.id = r.result_id WHERE r.key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        now = time.time()
        # Refresh the LRU stamp at minute granularity: a cached rebuild then mostly
        # reads, and never queues behind another process's write for a fresh stamp.
        if now - row[4] > TOUCH_INTERVAL:
            with self._write() as c:
                c.execute("UPDATE results SET last_used = ? WHERE id = ?", (now, row[0]))
        return CacheRecord(key, row[0], row[1], row[2], now, row[3])

    def exists(self, key: str) -> bool:
        """Whether ``key`` has a record (without touching its last-used time)."""
        row = self._conn().execute("SELECT 1 FROM records WHERE key = ?", (key,)).fetchone()
        return row is not None

    def existing(self, keys: Sequence[str]) -> set[str]:
        """The subset of ``keys`` that have records (one query per 500 keys)."""
        found: set[str] = set()
        conn = self._conn()
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in conn.execute(
                f"SELECT key FROM records WHERE key IN ({marks})", chunk))
        return found

    def save(
        self,
        key: str,
        result: Result,
        *,
        description: str = "",
        cachemap_digest: str = "",
        output: int = 0,
        links: Sequence[KeyInput] = (),
    ) -> CacheRecord:
        """Store ``key -> result`` (a newer result for a key replaces the older one)."""
        now = time.time()
        rid, size = result.id, int(result.size)
        with self._write() as c:
            c.execute(
                "INSERT INTO results(id, size, created, last_used, description) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "size = excluded.size, last_used = excluded.last_used",
                (rid, size, now, now, description),
            )
            c.execute(
                "INSERT OR REPLACE INTO records(key, result_id, created) VALUES (?, ?, ?)",
                (key, rid, now),
            )
            if cachemap_digest:
                c.execute(
                    "INSERT OR REPLACE INTO keys(key, cachemap_digest, output) VALUES (?, ?, ?)",
                    (key, cachemap_digest, output),
                )
                c.execute("DELETE FROM links WHERE key = ?", (key,))
                c.executemany(
                    "INSERT INTO links(key, input, input_key, content, selectors, source) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (key, i, ln.key, int(ln.content), "\n".join(ln.selectors), ln.source)
                        for i, ln in enumerate(links)
                    ],
                )
        return CacheRecord(key, rid, size, now, now, description)

    def delete(self, key: str) -> None:
        """Forget ``key`` (e.g. its result vanished); an orphaned result goes on prune."""
        with self._write() as c:
            c.execute("DELETE FROM records WHERE key = ?", (key,))

    def remove_results(self, result_ids: Sequence[str]) -> None:
        """Forget these results and every key pointing to them (a GC policy of the builder
        chose them); their snapshots go with the next sweep."""
        ids = [(rid,) for rid in result_ids]
        with self._write() as c:
            c.executemany("DELETE FROM records WHERE result_id = ?", ids)
            c.executemany("DELETE FROM results WHERE id = ?", ids)
            c.execute("DELETE FROM links WHERE key NOT IN (SELECT key FROM records)")
            c.execute("DELETE FROM keys WHERE key NOT IN (SELECT key FROM records)")

    def links(self, key: str) -> tuple[str, int, list[KeyLink]] | None:
        """(cache-map digest, output, input links) a key was computed from, if recorded."""
        conn = self._conn()
        row = conn.execute(
            "SELECT cachemap_digest, output FROM keys WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        rows = conn.execute(
            "SELECT input, input_key, content, selectors, source FROM links WHERE key = ? "
            "ORDER BY input",
            (key,),
        ).fetchall()
        return row[0], row[1], [
            KeyLink(r[0], r[1], bool(r[2]), tuple(r[3].split("\n")) if r[3] else (), r[4])
            for r in rows
        ]

    def checksum(self, source: str, selectors: Sequence[str]) -> str | None:
        """A content checksum some key took of edge ``source``'s result at ``selectors``
        (so a consumer is keyed again without loading that result), if recorded."""
        sel = "\n".join(selectors)
        conn = self._conn()
        row = conn.execute(
            "SELECT input_key FROM links WHERE source = ? AND content = 1 AND selectors = ? "
            "LIMIT 1", (source, sel)).fetchone() or conn.execute(
            "SELECT digest FROM checksums WHERE source = ? AND selectors = ?",
            (source, sel)).fetchone()
        return None if row is None else str(row[0])

    def remember_checksum(self, source: str, selectors: Sequence[str], digest: str) -> None:
        """Keep a checksum an imported cache told (see :meth:`checksum`)."""
        with self._write() as c:
            c.execute("INSERT OR REPLACE INTO checksums(source, selectors, digest) "
                      "VALUES (?, ?, ?)", (source, "\n".join(selectors), digest))

    # ------------------------------------------------------------ step slots

    def remember_step(self, slot: str, key: str, edge_key: str, summary: str) -> None:
        """Remember that step ``slot`` last ran with vertex key ``key`` (its output 0 saved
        under ``edge_key``) and the handler's ``summary`` of the op."""
        with self._write() as c:
            c.execute(
                "INSERT OR REPLACE INTO steps(slot, key, edge_key, summary, updated) "
                "VALUES (?, ?, ?, ?, ?)", (slot, key, edge_key, summary, time.time()))

    def step(self, slot: str) -> StepRecord | None:
        """What step ``slot`` last ran with, if it ever ran on this state root."""
        row = self._conn().execute(
            "SELECT key, edge_key, summary FROM steps WHERE slot = ?", (slot,)).fetchone()
        return None if row is None else StepRecord(slot, row[0], row[1], row[2])

    # ------------------------------------------------------------ in-use marks

    def mark_in_use(self, result_id: str) -> None:
        with self._in_use_lock:
            self._in_use[result_id] = self._in_use.get(result_id, 0) + 1

    def unmark_in_use(self, result_id: str) -> None:
        with self._in_use_lock:
            n = self._in_use.get(result_id, 0) - 1
            if n > 0:
                self._in_use[result_id] = n
            else:
                self._in_use.pop(result_id, None)

    def in_use(self, result_id: str) -> bool:
        with self._in_use_lock:
            return result_id in self._in_use

    # ------------------------------------------------------------ usage and GC

    def usage(self) -> CacheUsage:
        """Every stored result, most recently used first."""
        rows = self._conn().execute(
            "SELECT s.id, s.size, s.created, s.last_used, s.description, "
            "(SELECT COUNT(*) FROM records r WHERE r.result_id = s.id) "
            "FROM results s ORDER BY s.last_used DESC"
        ).fetchall()
        with self._in_use_lock:
            used = set(self._in_use)
        return CacheUsage(
            tuple(UsageEntry(r[0], r[1], r[2], r[3], r[4], r[5], r[0] in used) for r in rows)
        )

    def prune(
        self,
        *,
        keep_duration: float | None = None,
        keep_storage: int | None = None,
        now: float | None = None,
    ) -> list[PrunedResult]:
        """Delete results not in use; return them so their snapshots can be removed.

        With no limits, everything not in use goes. ``keep_duration`` (seconds) keeps
        results used within that time; ``keep_storage`` (bytes) then also removes the
        least recently used results until the total fits. Results no key points to any
        more are always removed.
        """
        now = time.time() if now is None else now
        with self._in_use_lock:
            used = set(self._in_use)
        with self._write() as c:
            rows = c.execute(
                "SELECT s.id, s.size, s.last_used, s.description, "
                "EXISTS(SELECT 1 FROM records r WHERE r.result_id = s.id) "
                "FROM results s ORDER BY s.last_used ASC"
            ).fetchall()
            total = sum(r[1] for r in rows)
            limited = keep_duration is not None or keep_storage is not None
            doomed: list[PrunedResult] = []
            for rid, size, last_used, desc, referenced in rows:
                if rid in used:
                    continue
                too_old = keep_duration is not None and last_used < now - keep_duration
                too_big = keep_storage is not None and total > keep_storage
                if not referenced or not limited or too_old or too_big:
                    doomed.append(PrunedResult(rid, size, desc))
                    total -= size
            ids = [(p.result_id,) for p in doomed]
            c.executemany("DELETE FROM records WHERE result_id = ?", ids)
            c.executemany("DELETE FROM results WHERE id = ?", ids)
            # Key-graph rows of keys that lost their record are only debug data now.
            c.execute("DELETE FROM links WHERE key NOT IN (SELECT key FROM records)")
            c.execute("DELETE FROM keys WHERE key NOT IN (SELECT key FROM records)")
            if not limited:  # a full prune forgets what imports taught too
                c.execute("DELETE FROM checksums")
        return doomed

