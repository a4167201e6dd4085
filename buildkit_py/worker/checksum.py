"""Content checksums of selected paths, for content-based cache keys (reference §4.3).

A file's digest covers its mode, owner, size, type, link target, kept xattrs and
bytes, but not its mtime, so touching a file does not invalidate the cache. A
directory's digest covers its own header and, in name order, each kept child's
name and digest. File contents are hashed once per (inode, size, mtime, ctime):
the memo lives in a small sqlite table, so a rebuild of an unchanged context
re-hashes nothing.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from buildkit_py import rootpath

Keep = Callable[[str], bool]
_KEPT_XATTR_PREFIXES = ("user.", "trusted.")
_CHUNK = 1 << 20


class ChecksumCache:
    """Memo of file-content sha256 by stat identity, persisted under the state root."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, ident TEXT, sha TEXT)")
        self._lock = threading.Lock()
        self._mem: dict[str, tuple[str, str]] = {}
        self._pending: list[tuple[str, str, str]] = []

    def content(self, path: str, st: os.stat_result) -> str:
        ident = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
        with self._lock:
            hit = self._mem.get(path)
            if hit is None:
                row = self._db.execute("SELECT ident, sha FROM files WHERE path=?",
                                       (path,)).fetchone()
                if row is not None:
                    hit = (row[0], row[1])
                    self._mem[path] = hit
        if hit is not None and hit[0] == ident:
            return hit[1]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        sha = h.hexdigest()
        with self._lock:
            self._mem[path] = (ident, sha)
            self._pending.append((path, ident, sha))
        return sha

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            if pending:
                self._db.executemany(
                    "INSERT OR REPLACE INTO files (path, ident, sha) VALUES (?, ?, ?)", pending)

    def close(self) -> None:
        self.flush()
        self._db.close()


def _header(st: os.stat_result, link: str, xattrs: list[tuple[str, bytes]],
            zero_owner: bool) -> bytes:
    uid, gid = (0, 0) if zero_owner else (st.st_uid, st.st_gid)
    kind = stat.S_IFMT(st.st_mode)
    size = st.st_size if stat.S_ISREG(st.st_mode) else 0
    dev = (os.major(st.st_rdev), os.minor(st.st_rdev)) if (
        stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)) else (0, 0)
    parts = [f"{stat.S_IMODE(st.st_mode):o}", str(uid), str(gid), str(size), str(kind),
             link, f"{dev[0]},{dev[1]}"]
    head = "\0".join(parts).encode()
    for name, value in xattrs:
        head += b"\0x:" + name.encode() + b"=" + value
    return head


def _xattrs(path: str) -> list[tuple[str, bytes]]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return []
    out = []
    for name in sorted(names):
        if name == "security.capability" or name.startswith(_KEPT_XATTR_PREFIXES):
            if name.startswith("trusted.overlay."):
                continue
            try:
                out.append((name, os.getxattr(path, name, follow_symlinks=False)))
            except OSError:
                continue
    return out


class Checksummer:
    """Digest of a path inside a root, honouring a keep filter (include/exclude)."""

    def __init__(self, cache: ChecksumCache, *, zero_owner: bool = False) -> None:
        self.cache = cache
        self.zero_owner = zero_owner

    def entry(self, host: str, rel: str, keep: Keep | None, excluded: bool = False
              ) -> str | None:
        """Digest of ``host`` (``rel``: its path below the selection root), None if absent.

        An excluded directory still counts when it holds re-included descendants.
        """
        try:
            st = os.lstat(host)
        except FileNotFoundError:
            return None
        is_dir = stat.S_ISDIR(st.st_mode)
        if excluded and not is_dir:
            return None
        link = os.readlink(host) if stat.S_ISLNK(st.st_mode) else ""
        h = hashlib.sha256(_header(st, link, _xattrs(host), self.zero_owner))
        if stat.S_ISREG(st.st_mode):
            h.update(b"\0data:" + self.cache.content(host, st).encode())
        elif is_dir:
            any_kept = not excluded
            with os.scandir(host) as it:
                names = sorted(e.name for e in it)
            for name in names:
                sub_rel = f"{rel}/{name}" if rel else name
                sub_excluded = keep is not None and not keep(sub_rel)
                child = self.entry(os.path.join(host, name), sub_rel, keep, sub_excluded)
                if child is None:
                    continue
                any_kept = True
                h.update(b"\0child:" + name.encode() + b"=" + child.encode())
            if not any_kept:
                return None
        return h.hexdigest()

    def selection(self, root: str, path: str, *, follow: bool = True,
                  keep: Keep | None = None) -> str:
        """Digest of ``path`` inside ``root`` ("missing" when absent)."""
        host = rootpath.resolve(root, path, follow_final=follow)
        return self.entry(host, "", keep) or "missing"
