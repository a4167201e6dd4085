"""Content checksums of selected paths, for content-based cache keys: a context source
keys on the checksums of exactly the paths it selects.

A file's digest covers its mode, owner, size, type, link target, kept xattrs and
bytes, but not its mtime, so touching a file does not invalidate the cache. A
directory's digest covers its own header and, in name order, each kept child's
name and digest. File contents are hashed once per (inode, size, mtime, ctime):
the memo lives in a small sqlite table, so a rebuild of an unchanged context
re-hashes nothing.

To explain a cache miss by the context files that changed, a walk of a local context
can keep its tree (``Checksummer(keep_trees=True)``); when the selection's digest is one
not seen before, its per-path map (``Checksummer.manifest``: path -> short digest, made
from the tree in memory, no second walk) is stored under that digest
(``ChecksumCache.remember_manifest``, the last few per selection), and two digests'
maps are compared by ``describe_manifest_change``.

Files of a mounted snapshot are hashed without that memo: their paths live only as
long as the mount. A committed snapshot never changes, so the digest of a whole
selection of it is memoized instead (``ChecksumCache.selection``), keyed by the
snapshot's identity and the selection's parameters.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from buildkit_py import rootpath, sqlitedb

Keep = Callable[[str], bool]
_KEPT_XATTR_PREFIXES = ("user.", "trusted.")
_CHUNK = 1 << 20
_HASH_BATCH = 128  # files per pool task: a task per small file costs more than its hash
_HASH_WORKERS = 2  # sha256 and read() release the GIL; more only contends for disk
# Part of every memoized selection's key: bump it when a digest computed from the same
# tree changes (header fields, combination order), so old memo rows stop matching.
DIGEST_VERSION = "1"
_SWEEP_ROWS = 4096  # selection memo rows past which rows of removed snapshots are dropped

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, ident TEXT, sha TEXT);
CREATE TABLE IF NOT EXISTS selections (
    snapshot TEXT NOT NULL, spec TEXT NOT NULL, ident TEXT NOT NULL, digest TEXT NOT NULL,
    PRIMARY KEY (snapshot, spec));
"""
# Per-path maps of local-context selections by their content digest (see the docstring).
_SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS manifests (
    digest TEXT PRIMARY KEY, slot TEXT NOT NULL, created REAL NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS manifests_by_slot ON manifests(slot, created);
"""
_MIGRATIONS = (_SCHEMA_V1, _SCHEMA_V2)
MANIFESTS_PER_SLOT = 4  # digests of one selection whose maps are kept
_NAMED_PATHS = 3  # paths a change description names before "and N more"


def file_sha256(path: str) -> str:
    """The sha256 of a file's bytes (thread-safe: hashlib and read() release the GIL)."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class FileDigests(Protocol):
    """Where a :class:`Checksummer` gets file-content digests."""

    def preload(self, prefix: str) -> None: ...

    def lookup(self, path: str, st: os.stat_result) -> str | None: ...

    def compute(self, path: str, st: os.stat_result) -> str: ...


class UnmemoizedDigests:
    """File digests for a temporary mount: its paths die with it, so nothing is kept."""

    def preload(self, prefix: str) -> None:
        pass

    def lookup(self, path: str, st: os.stat_result) -> str | None:
        return None

    def compute(self, path: str, st: os.stat_result) -> str:
        return file_sha256(path)


class ChecksumCache:
    """Memo of file-content sha256 by stat identity, and of selection digests of
    committed snapshots by snapshot identity, persisted under the state root."""

    def __init__(self, path: Path) -> None:
        self._db = sqlitedb.open_db(path, _MIGRATIONS)
        self._lock = threading.Lock()
        self._mem: dict[str, tuple[str, str]] = {}
        self._loaded: set[str] = set()
        self._pending: list[tuple[str, str, str]] = []

    def preload(self, prefix: str) -> None:
        """Read every row below directory ``prefix`` in one query (not one per file)."""
        base = prefix.rstrip("/") + "/"
        with self._lock:
            if any(base.startswith(done) for done in self._loaded):
                return
            # paths below base sort between base and base with its "/" bumped to "0"
            rows = self._db.execute(
                "SELECT path, ident, sha FROM files WHERE path >= ? AND path < ?",
                (base, base[:-1] + "0")).fetchall()
            for path, ident, sha in rows:
                self._mem.setdefault(path, (ident, sha))
            self._loaded.add(base)

    @staticmethod
    def _ident(st: os.stat_result) -> str:
        return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"

    def lookup(self, path: str, st: os.stat_result) -> str | None:
        """The memoized digest of ``path`` if its stat identity is unchanged."""
        hit = self._mem.get(path)  # a dict read needs no lock; the DB fallback does
        if hit is None:
            with self._lock:
                hit = self._mem.get(path)
                if hit is None and not any(path.startswith(done) for done in self._loaded):
                    row = self._db.execute("SELECT ident, sha FROM files WHERE path=?",
                                           (path,)).fetchone()
                    if row is not None:
                        hit = (row[0], row[1])
                        self._mem[path] = hit
        if hit is not None and hit[0] == self._ident(st):
            return hit[1]
        return None

    def compute(self, path: str, st: os.stat_result) -> str:
        """Hash ``path`` (thread-safe: hashlib releases the GIL) and memoize it."""
        sha = file_sha256(path)
        ident = self._ident(st)
        with self._lock:
            self._mem[path] = (ident, sha)
            self._pending.append((path, ident, sha))
        return sha

    def content(self, path: str, st: os.stat_result) -> str:
        return self.lookup(path, st) or self.compute(path, st)

    def flush(self) -> None:
        if not self._pending:  # the common no-op case: skip the lock other threads hold
            return
        with self._lock:
            pending, self._pending = self._pending, []
            if pending:  # one transaction: autocommit would sync the WAL once per row
                with self._db:
                    self._db.execute("BEGIN")
                    self._db.executemany(
                        "INSERT OR REPLACE INTO files (path, ident, sha) VALUES (?, ?, ?)",
                        pending)

    def close(self) -> None:
        self.flush()
        self._db.close()

    # selections of committed snapshots ------------------------------------------

    def selection(self, snapshot: str, ident: str, spec: str) -> str | None:
        """The memoized digest of selection ``spec`` of ``snapshot``, if it was computed
        for the same snapshot identity ``ident`` (a reused key has another one)."""
        with self._lock:
            row = self._db.execute(
                "SELECT ident, digest FROM selections WHERE snapshot=? AND spec=?",
                (snapshot, spec)).fetchone()
        if row is None or row[0] != ident:
            return None
        return str(row[1])

    def remember_selection(self, snapshot: str, ident: str, spec: str, digest: str) -> None:
        """Memoize a selection digest; rows of an earlier snapshot under the same key go."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM selections WHERE snapshot=? AND ident<>?",
                             (snapshot, ident))
            self._db.execute(
                "INSERT OR REPLACE INTO selections (snapshot, spec, ident, digest) "
                "VALUES (?, ?, ?, ?)", (snapshot, spec, ident, digest))

    # per-path maps of local selections ----------------------------------------

    def remember_manifest(self, slot: str, digest: str,
                          build: Callable[[], dict[str, str]]) -> None:
        """Store ``build()`` (path -> short digest) as the map of content ``digest`` of
        selection ``slot``, unless that digest's map is stored already (a rebuild of an
        unchanged context only asks); keeps the newest few maps per slot."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM manifests WHERE digest=?",
                                   (digest,)).fetchone()
        if row is not None:
            return
        # NUL-separated path, value pairs: no path holds a NUL, and it is 10x faster than JSON
        data = zlib.compress("\0".join(x for pair in build().items() for x in pair)
                             .encode("utf-8", "surrogateescape"), 1)
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute("INSERT OR REPLACE INTO manifests (digest, slot, created, data) "
                             "VALUES (?, ?, ?, ?)", (digest, slot, time.time(), data))
            self._db.execute(
                "DELETE FROM manifests WHERE slot=? AND digest NOT IN (SELECT digest FROM "
                "manifests WHERE slot=? ORDER BY created DESC LIMIT ?)",
                (slot, slot, MANIFESTS_PER_SLOT))

    def manifest(self, digest: str) -> dict[str, str] | None:
        """The per-path map stored for content ``digest``, if any."""
        with self._lock:
            row = self._db.execute("SELECT data FROM manifests WHERE digest=?",
                                   (digest,)).fetchone()
        if row is None:
            return None
        parts = zlib.decompress(row[0]).decode("utf-8", "surrogateescape").split("\0")
        return dict(zip(parts[::2], parts[1::2], strict=True)) if parts != [""] else {}

    def forget_snapshot(self, snapshot: str) -> None:
        """Drop every memoized selection of ``snapshot`` (it was removed)."""
        with self._lock:
            self._db.execute("DELETE FROM selections WHERE snapshot=?", (snapshot,))

    def sweep_selections(self, alive: Callable[[str, str], bool],
                         above: int = _SWEEP_ROWS) -> int:
        """Once the memo holds more than ``above`` rows, drop those whose snapshot is
        gone (``alive(snapshot, ident)`` is False); returns how many were dropped."""
        with self._lock:
            count = self._db.execute("SELECT count(*) FROM selections").fetchone()[0]
            if count <= above:
                return 0
            pairs = self._db.execute(
                "SELECT DISTINCT snapshot, ident FROM selections").fetchall()
        dead = [(snap, ident) for snap, ident in pairs if not alive(snap, ident)]
        if dead:
            with self._lock, self._db:
                self._db.execute("BEGIN")
                self._db.executemany("DELETE FROM selections WHERE snapshot=? AND ident=?",
                                     dead)
        return len(dead)


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


@dataclass
class _Node:
    """One walked entry: its header, its content digest (maybe still being hashed on the
    pool) and its kept children in name order."""

    head: bytes
    data: str | None = None  # a regular file's content sha256, once known
    children: list[tuple[str, _Node]] = field(default_factory=list)

    def digest(self) -> str:
        h = hashlib.sha256(self.head)
        if self.data is not None:
            h.update(b"\0data:" + self.data.encode())
        for name, child in self.children:
            h.update(b"\0child:" + name.encode() + b"=" + child.digest().encode())
        return h.hexdigest()


class Checksummer:
    """Digest of a path inside a root, honouring a keep filter (include/exclude).

    The tree is walked first; files not in the memo are hashed meanwhile in batches on
    a small thread pool, then the digests are combined bottom-up.
    """

    def __init__(self, cache: FileDigests, *, zero_owner: bool = False,
                 keep_trees: bool = False) -> None:
        self.cache = cache
        self.zero_owner = zero_owner
        # (selected path, walked tree) of each selection, for ``manifest``
        self.trees: list[tuple[str, _Node]] | None = [] if keep_trees else None
        self.hashed = 0  # files whose content was read (not memoized)
        self.files = 0
        self._pool: ThreadPoolExecutor | None = None
        self._batch: list[tuple[_Node, str, os.stat_result]] = []
        self._futures: list[Future[None]] = []

    def entry(self, host: str, rel: str, keep: Keep | None, excluded: bool = False
              ) -> str | None:
        """Digest of ``host`` (``rel``: its path below the selection root), None if absent.

        An excluded directory still counts when it holds re-included descendants.
        """
        node = self._tree(host, rel, keep, excluded)
        return None if node is None else node.digest()

    def _tree(self, host: str, rel: str, keep: Keep | None, excluded: bool = False
              ) -> _Node | None:
        try:
            node = self._walk(host, rel, keep, excluded)
            self._flush_batch()
            for fut in self._futures:
                fut.result()
            return node
        finally:
            self._batch, self._futures = [], []
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def _walk(self, host: str, rel: str, keep: Keep | None, excluded: bool) -> _Node | None:
        try:
            st = os.lstat(host)
        except FileNotFoundError:
            return None
        mode = st.st_mode
        is_dir = stat.S_ISDIR(mode)
        if excluded and not is_dir:
            return None
        link = os.readlink(host) if stat.S_ISLNK(mode) else ""
        node = _Node(_header(st, link, _xattrs(host), self.zero_owner))
        if stat.S_ISREG(mode):
            self.files += 1
            node.data = self.cache.lookup(host, st)
            if node.data is None:
                self._hash_later(node, host, st)
        elif is_dir:
            with os.scandir(host) as it:
                names = sorted(e.name for e in it)
            for name in names:
                sub_rel = f"{rel}/{name}" if rel else name
                sub_excluded = keep is not None and not keep(sub_rel)
                child = self._walk(f"{host}/{name}", sub_rel, keep, sub_excluded)
                if child is not None:
                    node.children.append((name, child))
            if excluded and not node.children:
                return None
        return node

    def _hash_later(self, node: _Node, host: str, st: os.stat_result) -> None:
        self.hashed += 1
        self._batch.append((node, host, st))
        if len(self._batch) >= _HASH_BATCH:
            self._flush_batch()

    def _flush_batch(self) -> None:
        if not self._batch:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(_HASH_WORKERS, thread_name_prefix="checksum")
        self._futures.append(self._pool.submit(self._hash_batch, self._batch))
        self._batch = []

    def _hash_batch(self, batch: list[tuple[_Node, str, os.stat_result]]) -> None:
        for node, host, st in batch:
            node.data = self.cache.compute(host, st)

    def selection(self, root: str, path: str, *, follow: bool = True,
                  keep: Keep | None = None) -> str:
        """Digest of ``path`` inside ``root`` ("missing" when absent)."""
        host = rootpath.resolve(root, path, follow_final=follow)
        self.cache.preload(host)
        node = self._tree(host, "", keep)
        if node is None:
            return "missing"
        if self.trees is not None:
            self.trees.append((path, node))
        return node.digest()

    def manifest(self) -> dict[str, str]:
        """Path (below the root the selections were made in) -> short digest of every
        entry of the kept trees; a directory's value covers its own header only."""
        out: dict[str, str] = {}
        for base, top in self.trees or ():
            stack = [(base.strip("/"), top)]
            while stack:
                rel, node = stack.pop()
                if rel:  # short is enough to tell a change: nothing is keyed on it
                    out[rel] = f"{zlib.crc32(node.head):08x}{(node.data or '')[:12]}"
                stack.extend((f"{rel}/{name}" if rel else name, child)
                             for name, child in node.children)
        return out


def describe_manifest_change(old: dict[str, str], new: dict[str, str],
                             noun: str = "context file") -> str | None:
    """Name the paths that differ between two per-path maps: "context file src/a.c
    changed", or "context files changed: a, b (added), c (removed) and 4 more" (an added
    or removed directory stands for its contents); None when the maps are equal."""
    changed = sorted(p for p, d in new.items() if p in old and old[p] != d)
    added = _tops(sorted(p for p in new if p not in old))
    removed = _tops(sorted(p for p in old if p not in new))
    items = [(p, "changed") for p in changed] + [(p, "added") for p in added] + [
        (p, "removed") for p in removed]
    if not items:
        return None
    if len(items) == 1:
        path, what = items[0]
        return f"{noun} {path} {what}"
    named = [p if what == "changed" else f"{p} ({what})" for p, what in items[:_NAMED_PATHS]]
    more = len(items) - len(named)
    text = f"{noun}s changed: " + ", ".join(named)
    return text + (f" and {more} more" if more else "")


def _tops(paths: list[str]) -> list[str]:
    """``paths`` (sorted) without those below another of them."""
    given = set(paths)

    def below_another(p: str) -> bool:
        while "/" in p:
            p = p.rsplit("/", 1)[0]
            if p in given:
                return True
        return False

    return [p for p in paths if not below_another(p)]
