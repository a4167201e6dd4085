"""Re-running a big COPY by hard-linking the files an earlier run already produced.

When a COPY misses the cache because a few context files changed, the new layer
differs from the previous layer of the same copy in those files only. Creating
20,000 new inodes is most of such a rebuild; ``link(2)`` creates none and copies
no data. The scheme:

- Every run of a reusable copy records, per destination file, the content sha256
  its source had (from the checksum memo that computed the cache key), keyed by
  the op (``ReuseIndex``), next to the layer it committed.
- The next run of the same op walks and copies as usual, but a regular file whose
  recorded sha matches the current source and whose destination is free is not
  written then. Once the layer is unmounted (``LinkPlan.finish``, before commit) it
  is linked from the earlier layer's own directory into the new one if the earlier
  file has the mode, owner, mtime and size the copy would give it and neither side
  has xattrs; otherwise it is copied there.

Why this stays correct:
- Committed snapshots are never written in place: overlayfs copies a file up to
  a new inode on write, the copying snapshotter copies whole trees, and a copy
  replaces an existing destination by unlink + create (never opens it for write).
  Nothing changes a reused inode's metadata either: a file is only taken when its
  final metadata is already right.
- Only files whose destination does not exist yet are taken (a directory this copy
  created, or a lexists probe), so no whiteout, replace or copy-up is skipped; the
  parent directory is then in the new layer's directory once unmounted.
- Two paths of the new layer share an inode only if the copy linked them itself:
  sources with several links are copied as usual and one earlier inode is never
  taken twice, so the layer tar (hardlinks detected within one layer) is the same
  as a from-scratch copy's. Directory times the copy set are set again after the
  links went in.
- The earlier layer is held by a view while its files are linked, so a prune cannot
  remove it halfway; removing it later only drops one name of each shared inode.
The op digest (not the parent) selects the candidate: every file is checked on its
own, so a new base image still reuses the files of the copy above it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from buildkit_py.snapshot import DBSnapshotter, SnapshotNotFoundError
from buildkit_py.worker import fileops

Lookup = Callable[[str, os.stat_result], "str | None"]
"""The memoized content sha256 of a source file if its stat identity is unchanged."""

MIN_FILES = 256  # below this a manifest costs more than the links would save
_BATCH = 1024  # files per pool task in ``LinkPlan.finish``
_MANIFEST_VERSION = 1


def reuse_key(op_digest: str, action: int) -> str:
    return hashlib.sha256(f"bkpy-copy-reuse-v1\0{op_digest}\0{action}".encode()).hexdigest()


class ReuseIndex:
    """For each reusable copy op: the last layer it committed and that layer's manifest
    (destination path -> source content sha256), as small files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _entry(self, key: str) -> Path:
        return self.root / f"{key}.layer"

    def _manifest(self, layer: str) -> Path:
        return self.root / f"{layer}.json"

    def previous(self, key: str, sn: DBSnapshotter) -> tuple[str, dict[str, str]] | None:
        """The last layer of ``key`` if it still exists, with its manifest."""
        try:
            layer = self._entry(key).read_text().strip()
            if not layer or "/" in layer:
                return None
            data = json.loads(self._manifest(layer).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("v") != _MANIFEST_VERSION:
            return None
        try:
            sn.stat(layer)
        except SnapshotNotFoundError:
            self._forget(key, layer)
            return None
        files = data.get("files")
        return (layer, files) if isinstance(files, dict) else None

    def record(self, key: str, layer: str, files: dict[str, str]) -> None:
        """Make ``layer`` the one the next run of ``key`` links from (best effort: a
        record that cannot be written only costs that run its links)."""
        with contextlib.suppress(OSError):
            self._record(key, layer, files)

    def _record(self, key: str, layer: str, files: dict[str, str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            old = self._entry(key).read_text().strip()
        except OSError:
            old = ""
        _write_atomic(self._manifest(layer), json.dumps({"v": _MANIFEST_VERSION,
                                                         "files": files}))
        _write_atomic(self._entry(key), layer)
        if old and old != layer:
            with contextlib.suppress(OSError):
                self._manifest(old).unlink()

    def _forget(self, key: str, layer: str) -> None:
        for path in (self._entry(key), self._manifest(layer)):
            with contextlib.suppress(OSError):
                path.unlink()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@contextlib.contextmanager
def pinned(sn: DBSnapshotter, layer: str | None, pin_key: str) -> Iterator[Path | None]:
    """``layer``'s own directory, with a view on it so it cannot be removed meanwhile."""
    if layer is None:
        yield None
        return
    try:
        sn.view(pin_key, layer)
    except SnapshotNotFoundError:
        yield None
        return
    try:
        yield sn.layer_dir(layer)
    finally:
        sn.remove(pin_key)


class LinkPlan:
    """Decides, file by file during a tree copy, what to link instead of copy.

    ``root`` is where the copy writes (the mounted layer), ``upper`` the new layer's
    own directory, ``old`` the earlier layer's own directory with its ``manifest``.
    """

    def __init__(self, upper: Path, lookup: Lookup, old: Path | None = None,
                 manifest: dict[str, str] | None = None) -> None:
        self.root = ""
        self.upper = str(upper)
        self.old = None if old is None else str(old)
        self.manifest = manifest or {}
        self.lookup = lookup
        self.files: dict[str, str] = {}  # the new manifest
        self._pending: list[tuple[str, str, os.stat_result, fileops.CopyOptions]] = []
        self._taken: set[int] = set()  # earlier inodes linked: one path each
        self.linked = 0
        self._dir_ok: dict[str, bool] = {}
        self._dir_times: list[tuple[str, tuple[int, int]]] = []

    def _rel(self, dst: str) -> str | None:
        root = self.root.rstrip("/") + "/"
        return dst[len(root):] if dst.startswith(root) else None

    def offer(self, src: str, st: os.stat_result, dst: str, fresh: bool,
              opts: fileops.CopyOptions) -> bool:
        """Whether the regular file ``src`` (lstat ``st``) is to be placed at ``dst`` by
        ``finish`` instead of copied now; records its sha for the next run either way.

        Only the cheap part is decided here, on the copy's walking thread; the earlier
        file's metadata is checked in ``finish`` (which copies the file when it differs).
        """
        if st.st_nlink > 1:
            return False  # hardlinks inside the source are the copy's own business
        rel = self._rel(dst)
        if rel is None:
            return False
        sha = self.lookup(src, st)
        if sha is None:
            return False
        self.files[rel] = sha
        if self.old is None or self.manifest.get(rel) != sha:
            return False
        if not fresh and not self._free(rel, dst):
            return False
        self._pending.append((rel, src, st, opts))
        return True

    def _free(self, rel: str, dst: str) -> bool:
        """Nothing at ``dst`` and its directory already in the new layer's own dir."""
        parent = rel.rpartition("/")[0]
        ok = self._dir_ok.get(parent)
        if ok is None:
            ok = os.path.isdir(f"{self.upper}/{parent}" if parent else self.upper)
            self._dir_ok[parent] = ok
        return ok and not os.path.lexists(dst)

    def note_dir_times(self, dirs: list[tuple[str, tuple[int, int]]]) -> None:
        """Times the copy gave its directories, set again once the links are in."""
        for dst, times in dirs:
            rel = self._rel(dst)
            if rel is not None:
                self._dir_times.append((rel, times))

    def finish(self) -> None:
        """Link (or, when the earlier file differs, copy) the taken files into ``upper``;
        the layer is no longer mounted. Returns once every file is in place."""
        if not self._pending:
            return
        data = fileops.DataCopier()
        lock = threading.Lock()
        pending = self._pending
        batches = [pending[i:i + _BATCH] for i in range(0, len(pending), _BATCH)]
        with ThreadPoolExecutor(fileops.copy_workers(), thread_name_prefix="relink") as pool:
            for linked in pool.map(lambda b: self._place(b, data, lock), batches):
                self.linked += linked
        parents = {rel.rpartition("/")[0] for rel, _, _, _ in pending}
        for rel, times in self._dir_times:
            if rel not in parents:
                continue  # nothing went in: its times are as the copy left them
            path = f"{self.upper}/{rel}" if rel else self.upper
            os.utime(path, ns=times, follow_symlinks=False)

    def _place(self, batch: list[tuple[str, str, os.stat_result, fileops.CopyOptions]],
               data: fileops.DataCopier, lock: threading.Lock) -> int:
        linked = 0
        for rel, src, st, opts in batch:
            old = f"{self.old}/{rel}"
            new = f"{self.upper}/{rel}"
            if self._same(old, src, st, opts, lock):
                try:
                    os.link(old, new, follow_symlinks=False)
                    linked += 1
                    continue
                except OSError:
                    pass  # e.g. EMLINK after very many rebuilds: a copy is always right
            fileops.copy_regular_file(src, st, new, opts, data)
        return linked

    def _same(self, old: str, src: str, st: os.stat_result, opts: fileops.CopyOptions,
              lock: threading.Lock) -> bool:
        """Whether the earlier file is what copying ``src`` would create now (the content
        already matched by sha), and its inode is not taken for another path."""
        try:
            ost = os.lstat(old)
        except OSError:
            return False
        meta = fileops.copied_meta(st, opts)
        if not (stat.S_ISREG(ost.st_mode) and ost.st_size == st.st_size
                and stat.S_IMODE(ost.st_mode) == meta.perm
                and ost.st_uid == meta.uid and ost.st_gid == meta.gid
                and ost.st_mtime_ns == meta.mtime_ns
                and not _has_xattrs(src) and not _has_xattrs(old)):
            return False
        with lock:
            if ost.st_ino in self._taken:
                return False
            self._taken.add(ost.st_ino)
        return True


def _has_xattrs(path: str) -> bool:
    try:
        return bool(os.listxattr(path, follow_symlinks=False))
    except OSError:
        return True
