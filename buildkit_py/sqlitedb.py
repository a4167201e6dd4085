"""How every sqlite database under the state root is opened.

The state root is shared by processes (CLI builds, the daemon, ``bkpy du``) and each
database by threads, so every connection is opened the same way:

* ``check_same_thread=False`` and ``isolation_level=None``: callers serialise access
  themselves and write inside explicit ``BEGIN IMMEDIATE`` transactions (:func:`write`),
  so a writer takes the write lock up front instead of failing on lock upgrade.
* a busy timeout of :data:`BUSY_TIMEOUT` seconds: a writer waits for another process's
  writer instead of failing with "database is locked".
* WAL journal, so readers never wait for the writer, with ``synchronous=NORMAL`` (safe
  against corruption in WAL mode; only the last commits may roll back on power loss).
  Switching to WAL needs the file to itself, and sqlite answers "database is locked" at
  once, without calling the busy handler, while another process creates the same fresh
  database, so the switch is retried for up to :data:`BUSY_TIMEOUT` seconds.
* the schema is a list of migrations and ``PRAGMA user_version`` counts how many ran.
  Migration 1 of each database is its original ``CREATE ... IF NOT EXISTS`` schema, so a
  database made before versioning (version 0, tables present) is adopted unchanged.
  An opened database already at its version costs one pragma read, not a schema script.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT = 30.0  # seconds a statement waits for another connection's lock
_WAL_RETRY_DELAY = 0.1  # seconds between attempts to switch a fresh database to WAL


def connect(path: Path, *, foreign_keys: bool = False) -> sqlite3.Connection:
    """A connection with the shared settings; the database must already be set up
    (:func:`open_db`) — this is for further connections, e.g. one per thread."""
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT, isolation_level=None,
                           check_same_thread=False)
    conn.execute("PRAGMA synchronous=NORMAL")
    if foreign_keys:
        conn.execute("PRAGMA foreign_keys=ON")
    return conn


def open_db(path: Path, migrations: Sequence[str], *,
            foreign_keys: bool = False) -> sqlite3.Connection:
    """Open (creating it and its directory if missing) the database at ``path``, in WAL
    mode, with every migration applied."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path, foreign_keys=foreign_keys)
    try:
        enable_wal(conn)
        migrate(conn, migrations)
    except BaseException:
        conn.close()
        raise
    return conn


class LazyDatabase:
    """A database opened (as :func:`open_db`) on first use, for a store a cached build may
    never touch. Not locked: its owner serialises :meth:`conn` and :meth:`close` with the
    lock it holds around its queries."""

    def __init__(self, path: Path, migrations: Sequence[str], *,
                 foreign_keys: bool = False) -> None:
        self.path = path
        self._migrations = migrations
        self._foreign_keys = foreign_keys
        self._conn: sqlite3.Connection | None = None

    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = open_db(self.path, self._migrations, foreign_keys=self._foreign_keys)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def enable_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL (persistent in the file), retrying while another process holds the
    fresh database."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() >= deadline:
                raise
            time.sleep(_WAL_RETRY_DELAY)


def migrate(conn: sqlite3.Connection, migrations: Sequence[str]) -> None:
    """Run the migrations past the database's ``user_version``, in one transaction, and
    set it to ``len(migrations)``. A newer version (a later bkpy's database) is left
    alone: migrations only add, so older code still finds what it reads."""
    target = len(migrations)
    if _version(conn) >= target:
        return
    with write(conn):
        done = _version(conn)  # another process may have migrated meanwhile
        for script in migrations[done:]:
            for statement in _statements(script):
                conn.execute(statement)
        if done < target:
            conn.execute(f"PRAGMA user_version={target}")


@contextmanager
def write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction: takes the write lock at once, rolls back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _statements(script: str) -> Iterator[str]:
    """The statements of ``script`` (``executescript`` would commit the open transaction)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                yield pending
            pending = ""
