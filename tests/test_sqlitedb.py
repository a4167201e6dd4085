"""The shared sqlite opener: settings, migrations by user_version, busy handling, WAL retry."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from buildkit_py import sqlitedb

_V1 = "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT);"
_V2 = """
ALTER TABLE t ADD COLUMN n INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS t_by_v ON t(v);
CREATE TRIGGER t_count AFTER INSERT ON t BEGIN UPDATE t SET n = 1 WHERE k = new.k; END;
"""


def _pragma(conn: sqlite3.Connection, name: str) -> object:
    return conn.execute(f"PRAGMA {name}").fetchone()[0]


def test_open_db_creates_the_file_in_wal_with_the_shared_settings(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "x.db"
    conn = sqlitedb.open_db(path, (_V1,), foreign_keys=True)
    try:
        assert path.exists()
        assert _pragma(conn, "journal_mode") == "wal"
        assert _pragma(conn, "synchronous") == 1  # NORMAL
        assert _pragma(conn, "foreign_keys") == 1
        assert _pragma(conn, "busy_timeout") == int(sqlitedb.BUSY_TIMEOUT * 1000)
        assert _pragma(conn, "user_version") == 1
        assert conn.isolation_level is None
    finally:
        conn.close()
    conn = sqlitedb.open_db(path, (_V1,))
    try:
        assert _pragma(conn, "foreign_keys") == 0
    finally:
        conn.close()


def test_an_unversioned_database_is_adopted_with_its_rows(tmp_path: Path) -> None:
    """A database written before versioning (user_version 0, tables present) keeps its data."""
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(_V1 + "INSERT INTO t VALUES ('a', 'b');")
    old.close()
    conn = sqlitedb.open_db(path, (_V1,))
    try:
        assert _pragma(conn, "user_version") == 1
        assert conn.execute("SELECT k, v FROM t").fetchall() == [("a", "b")]
    finally:
        conn.close()


def test_migration_from_an_older_user_version_runs_only_the_newer_steps(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    conn = sqlitedb.open_db(path, (_V1,))
    conn.execute("INSERT INTO t(k, v) VALUES ('a', 'b')")
    conn.close()
    conn = sqlitedb.open_db(path, (_V1, _V2))
    try:
        assert _pragma(conn, "user_version") == 2
        assert conn.execute("SELECT k, v, n FROM t").fetchall() == [("a", "b", 0)]
        conn.execute("INSERT INTO t(k, v) VALUES ('c', 'd')")  # the trigger ran as one statement
        assert conn.execute("SELECT n FROM t WHERE k = 'c'").fetchone() == (1,)
    finally:
        conn.close()
    # opening again at the same version runs nothing (the ALTER would fail if it ran twice)
    sqlitedb.open_db(path, (_V1, _V2)).close()
    # an older program's migration list leaves a newer database alone
    conn = sqlitedb.open_db(path, (_V1,))
    try:
        assert _pragma(conn, "user_version") == 2
    finally:
        conn.close()


def test_a_failed_migration_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.db"
    sqlitedb.open_db(path, (_V1,)).close()
    with pytest.raises(sqlite3.OperationalError):
        sqlitedb.open_db(path, (_V1, "CREATE TABLE u (x); SELECT * FROM missing;"))
    conn = sqlitedb.open_db(path, (_V1,))
    try:
        assert _pragma(conn, "user_version") == 1
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'u'").fetchone() is None
    finally:
        conn.close()


def test_write_rolls_back_on_error(tmp_path: Path) -> None:
    conn = sqlitedb.open_db(tmp_path / "w.db", (_V1,))
    try:
        with pytest.raises(RuntimeError), sqlitedb.write(conn) as c:
            c.execute("INSERT INTO t VALUES ('a', 'b')")
            raise RuntimeError("boom")
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone() == (0,)
        assert not conn.in_transaction
    finally:
        conn.close()


_HOLD_WRITE_LOCK = textwrap.dedent("""
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO t VALUES ('held', 'x')")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    conn.execute("COMMIT")
""")


def test_a_writer_waits_for_another_process_writer(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    conn = sqlitedb.open_db(path, (_V1,))
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_WRITE_LOCK, str(path), "1.0"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        # readers are not blocked by the writer (WAL)
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone() == (0,)
        start = time.monotonic()
        with sqlitedb.write(conn) as c:  # waits in the busy handler, does not fail
            c.execute("INSERT INTO t VALUES ('mine', 'y')")
        assert time.monotonic() - start > 0.5
        assert sorted(r[0] for r in conn.execute("SELECT k FROM t")) == ["held", "mine"]
    finally:
        holder.wait(timeout=30)
        conn.close()
    assert holder.returncode == 0


_OPEN_FRESH = textwrap.dedent("""
    import sys
    from pathlib import Path
    from buildkit_py import sqlitedb
    conn = sqlitedb.open_db(Path(sys.argv[1]), [
        "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT);"])
    with sqlitedb.write(conn) as c:
        c.execute("INSERT INTO t VALUES (?, 'v')", (sys.argv[2],))
    conn.close()
""")


def test_processes_creating_one_fresh_database_at_once_all_succeed(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN_FRESH, str(path), str(i)],
                              stderr=subprocess.PIPE, text=True) for i in range(8)]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, errors
    conn = sqlitedb.open_db(path, (_V1,))
    try:
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone() == (8,)
        assert _pragma(conn, "journal_mode") == "wal"
    finally:
        conn.close()


class _LockedAtFirst:
    """A connection whose WAL switch fails as sqlite does while another process creates
    the same database (immediately, without the busy handler)."""

    def __init__(self, failures: int, message: str = "database is locked") -> None:
        self.failures = failures
        self.message = message
        self.calls = 0

    def execute(self, sql: str) -> None:
        assert sql == "PRAGMA journal_mode=WAL"
        self.calls += 1
        if self.calls <= self.failures:
            raise sqlite3.OperationalError(self.message)


def test_wal_switch_is_retried_while_the_database_is_locked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlitedb, "_WAL_RETRY_DELAY", 0.001)
    conn = _LockedAtFirst(3)
    sqlitedb.enable_wal(conn)  # type: ignore[arg-type]
    assert conn.calls == 4


def test_wal_switch_gives_up_after_the_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlitedb, "_WAL_RETRY_DELAY", 0.001)
    monkeypatch.setattr(sqlitedb, "BUSY_TIMEOUT", 0.05)
    conn = _LockedAtFirst(10**9)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        sqlitedb.enable_wal(conn)  # type: ignore[arg-type]
    assert conn.calls > 1


def test_other_wal_switch_errors_are_not_retried() -> None:
    conn = _LockedAtFirst(1, "disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        sqlitedb.enable_wal(conn)  # type: ignore[arg-type]
    assert conn.calls == 1
