"""What earlier downloads of a URL left behind, so a rebuild can ask "changed?" instead of
downloading again (BuildKit keeps the same facts as metadata on its cache refs).

One row per (URL key, ETag): the content digest of that download, its ``Last-Modified``,
the file name it was saved under and the snapshot holding it. Only rows with an ETag are
offered to the server (``If-None-Match``), as in BuildKit: a URL served without one is
fetched again on every build (its cache key is the content digest, so the steps after it
still hit); its latest download is kept under the ETag ``""`` only so that an unchanged
body is not stored twice. Rows whose snapshot has been pruned are dropped when found.

The URL key is a digest of the URL and of every option that shapes the saved file (name,
mode, owner, auth secret, extra headers): the same URL added with another ``--chmod`` at
the source is another download.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from buildkit_py import sqlitedb

_MIGRATIONS = (
    """
    CREATE TABLE IF NOT EXISTS downloads (
        url_key TEXT NOT NULL,
        etag TEXT NOT NULL,
        digest TEXT NOT NULL,
        last_modified TEXT NOT NULL,
        filename TEXT NOT NULL,
        snapshot TEXT NOT NULL,
        PRIMARY KEY (url_key, etag)
    );
    """,
)


@dataclass(frozen=True, slots=True)
class Download:
    """One remembered download of a URL."""

    etag: str
    digest: str
    last_modified: str  # the header as sent ("" when there was none)
    filename: str
    snapshot: str


class DownloadIndex:
    """The per-URL ETag memo (an SQLite file, opened on first use); thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = sqlitedb.LazyDatabase(path, _MIGRATIONS)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def lookup(self, url_key: str, alive: Callable[[str], bool]) -> list[Download]:
        """The downloads of ``url_key`` whose snapshot is still ``alive``; rows of
        pruned snapshots are forgotten."""
        with self._lock:
            db = self._file.conn()
            rows = [Download(*r) for r in db.execute(
                "SELECT etag, digest, last_modified, filename, snapshot FROM downloads "
                "WHERE url_key = ? ORDER BY rowid", (url_key,))]
            dead = [r for r in rows if not alive(r.snapshot)]
            if dead:
                with sqlitedb.write(db):
                    db.executemany("DELETE FROM downloads WHERE url_key = ? AND etag = ?",
                                   [(url_key, r.etag) for r in dead])
        return [r for r in rows if r not in dead]

    def remember(self, url_key: str, download: Download) -> None:
        with self._lock:
            db = self._file.conn()
            with sqlitedb.write(db):
                db.execute("INSERT OR REPLACE INTO downloads VALUES (?, ?, ?, ?, ?, ?)",
                           (url_key, download.etag, download.digest, download.last_modified,
                            download.filename, download.snapshot))
