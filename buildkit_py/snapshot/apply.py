"""Unpack a layer tar (gzip / zstd / plain, detected by magic) onto a directory.

Two targets:
- a plain directory holding the full tree below (``overlay_upper=False``):
  whiteouts delete, opaque markers empty the directory of lower contents;
- an overlay upper dir over ``lowers`` (``overlay_upper=True``): whiteouts become
  char devices 0:0 and opaque markers the ``trusted.overlay.opaque`` xattr, so the
  lower layers stay untouched.

Unsafe entries (absolute names, ``..`` escapes, writing through a symlink that
leaves the root) raise UnsafeLayerError before anything is written for them.

Speed: decompression (and hashing) runs on a helper thread ahead of the tar parser,
and regular files are created, written and given their attributes on a small thread
pool, because creating an inode costs far more than parsing its header. Every step
that could observe or change a path with a write in flight (removal, hardlink,
whiteout, a duplicate name, a parent walk through it) waits for those writes first,
so the result is the same as applying the entries one by one.
"""

from __future__ import annotations

import os
import queue
import shutil
import stat
import tarfile
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, cast

from buildkit_py import rootpath
from buildkit_py.snapshot.compression import LayerReader
from buildkit_py.snapshot.errors import LayerError, SnapshotError, UnsafeLayerError
from buildkit_py.snapshot.layer_tar import OPAQUE_MARKER, WHITEOUT_PREFIX
from buildkit_py.snapshot.lowerview import (
    OPAQUE_XATTRS,
    LowerView,
    is_opaque,
    is_whiteout,
    split_rel,
)
from buildkit_py.snapshot.types import ApplyResult

_COPY = 1 << 20
_SKIPPED_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")
_IS_ROOT = os.geteuid() == 0
# files up to this size are read whole and written on the pool; bigger ones inline
_ASYNC_MAX = 1 << 20
_INFLIGHT_FILES = 32  # with _ASYNC_MAX, bounds the memory held by queued writes
_WRITERS = 4
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def apply_layer(
    stream: BinaryIO,
    root: str | os.PathLike[str],
    *,
    overlay_upper: bool = False,
    lowers: Sequence[Path] = (),
) -> ApplyResult:
    """Apply the layer read from ``stream`` to ``root``; returns its digests."""
    reader = LayerReader(stream)
    source = _Prefetch(reader)
    applier = _Applier(Path(root), overlay_upper, lowers)
    try:
        with tarfile.open(
            fileobj=cast(BinaryIO, source), mode="r:", encoding="utf-8",
            errors="surrogateescape",
        ) as tf:
            for member in tf:
                applier.apply(tf, source, member)
        source.drain()
        applier.finish()
    except SnapshotError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, ValueError) as e:
        raise LayerError(f"malformed layer: {e}") from None
    except Exception as e:
        if type(e).__module__.startswith("zstandard") or "zstd" in type(e).__name__.lower():
            raise LayerError(f"malformed zstd layer: {e}") from None
        raise
    finally:
        applier.close()
        source.close()
    return ApplyResult(reader.diff_id, reader.raw_digest, reader.raw_size, reader.compression)


class _Prefetch:
    """A forward-only file over ``reader``, read ahead on a helper thread.

    ``tell``/``seek`` exist for tarfile's random-access mode, which reads file data
    without copying through its stream buffer; only forward seeks are allowed."""

    def __init__(self, reader: LayerReader) -> None:
        self._reader = reader
        self._q: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=8)
        self._stop = False
        self._buf = b""
        self._off = 0
        self._pos = 0
        self._eof = False
        self._thread = threading.Thread(target=self._run, name="bkpy-layer-read", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop:
                chunk = self._reader.read(_COPY)
                self._q.put(chunk)
                if not chunk:
                    return
        except BaseException as e:  # handed to the reading thread
            self._q.put(e)

    def _next(self) -> bytes:
        if self._eof:
            return b""
        item = self._q.get()
        if isinstance(item, BaseException):
            self._eof = True
            raise item
        if not item:
            self._eof = True
        return item

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = 1 << 62
        avail = len(self._buf) - self._off
        if avail >= n:
            out = self._buf[self._off:self._off + n]
            self._off += n
            self._pos += n
            return out
        parts = [self._buf[self._off:]] if avail else []
        need = n - avail
        self._buf, self._off = b"", 0
        while need > 0:
            chunk = self._next()
            if not chunk:
                break
            if len(chunk) > need:
                parts.append(chunk[:need])
                self._buf, self._off = chunk, need
                need = 0
            else:
                parts.append(chunk)
                need -= len(chunk)
        out = parts[0] if len(parts) == 1 else b"".join(parts)
        self._pos += len(out)
        return out

    def readinto_file(self, fd: int, size: int) -> int:
        """Copy ``size`` bytes to ``fd`` without joining them; returns bytes copied."""
        left = size
        while left > 0:
            avail = len(self._buf) - self._off
            if not avail:
                self._buf, self._off = self._next(), 0
                if not self._buf:
                    break
                continue
            take = min(avail, left)
            view = memoryview(self._buf)[self._off:self._off + take]
            while view:
                view = view[os.write(fd, view):]
            self._off += take
            self._pos += take
            left -= take
        return size - left

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR:
            pos += self._pos
        elif whence != os.SEEK_SET or pos < self._pos:
            raise LayerError("layer stream cannot seek backwards")
        while self._pos < pos:
            if not self.read(min(pos - self._pos, _COPY)):
                break
        return self._pos

    def drain(self) -> None:
        """Read to the end so the reader's digests cover the whole stream."""
        while self._next():
            pass
        self._buf, self._off = b"", 0

    def close(self) -> None:
        self._stop = True
        while self._thread.is_alive():
            try:
                self._q.get(timeout=0.05)
            except queue.Empty:
                continue
        self._thread.join()


class _Writes:
    """Regular files created on a few threads; ``pending`` holds the real root-relative
    paths of the writes queued or in flight."""

    def __init__(self) -> None:
        self._q: queue.Queue[tuple[str, str, bytes, tarfile.TarInfo] | None] = queue.Queue(
            maxsize=_INFLIGHT_FILES)
        self._threads: list[threading.Thread] = []
        self.pending: set[str] = set()
        self._errors: list[BaseException] = []

    def submit(self, rel: str, path: str, data: bytes, m: tarfile.TarInfo) -> None:
        if self._errors:
            self.drain()
        if not self._threads:
            for i in range(_WRITERS):
                t = threading.Thread(target=self._run, name=f"bkpy-layer-write-{i}",
                                     daemon=True)
                t.start()
                self._threads.append(t)
        self.pending.add(rel)
        self._q.put((rel, path, data, m))

    def _run(self) -> None:
        while (job := self._q.get()) is not None:
            rel, path, data, m = job
            try:
                if not self._errors:
                    _write_file(path, data, m)
            except BaseException as e:
                self._errors.append(e)
            finally:
                self.pending.discard(rel)
                self._q.task_done()
        self._q.task_done()

    def drain(self) -> None:
        """Wait for every queued write; raise the first error."""
        if self._threads:
            self._q.join()
        self.pending.clear()
        if self._errors:
            raise self._errors[0]

    def close(self) -> None:
        for _ in self._threads:
            self._q.put(None)
        for t in self._threads:
            t.join()
        self._threads.clear()


def _write_file(path: str, data: bytes | None, m: tarfile.TarInfo,
                source: _Prefetch | None = None) -> None:
    """Create ``path`` with the member's content (``data``, or read from ``source``)
    and attributes, all through one descriptor."""
    fd = os.open(path, _CREATE_FLAGS, 0o600)
    try:
        if data is not None:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        elif source is not None and source.readinto_file(fd, m.size) != m.size:
            raise LayerError(f"malformed layer: entry {m.name!r} is truncated")
        try:
            os.fchown(fd, m.uid, m.gid)
        except PermissionError:
            if _IS_ROOT:
                raise
        _set_xattrs(m, fd)
        os.fchmod(fd, m.mode & 0o7777)
        ns = round(float(m.mtime) * 1e9)
        os.utime(fd, ns=(ns, ns))
    finally:
        os.close(fd)


def _set_xattrs(m: tarfile.TarInfo, target: str | int) -> None:
    for key, value in m.pax_headers.items():
        if not key.startswith("SCHILY.xattr."):
            continue
        name = key[len("SCHILY.xattr."):]
        if name.startswith(_SKIPPED_XATTR_PREFIXES):
            continue
        raw = value.encode("utf-8", "surrogateescape")
        try:
            if isinstance(target, int):
                os.setxattr(target, name, raw)
            else:
                os.setxattr(target, name, raw, follow_symlinks=False)
        except OSError as e:
            raise LayerError(f"layer entry {m.name!r}: cannot set xattr {name}: {e}") from None


def _member_path(name: str) -> str:
    """A tar member name as a root-relative path ('' is the root); refuses escapes."""
    try:
        return rootpath.clean_relative(name)
    except rootpath.RootEscapeError as e:
        raise UnsafeLayerError(f"layer entry {name!r} {e.reason}") from None


class _Missing(Exception):
    """A parent directory is absent and may not be created: the walk stops."""


class _ParentDirs:
    """Real directories for the root-relative parent paths of layer entries (cached).

    The walk is :func:`rootpath.walk` in strict mode: a symlink is followed only while
    it stays inside the root, otherwise the layer is refused rather than re-rooted. In
    overlay-upper mode the walk sees the merged view (upper over lower layers) and
    creates missing parents in the upper dir with the lower directory's attributes (as
    a kernel copy-up would)."""

    def __init__(self, root: Path, view: LowerView | None, writes: _Writes) -> None:
        self.root = root
        self.view = view  # set in overlay-upper mode
        self.writes = writes
        self._cache: dict[str, tuple[Path, str]] = {"": (root, "")}
        # Real dirs this apply created empty (plus the root if it started empty), and
        # every real path it created: a name in a fresh dir that is not in ``created``
        # cannot exist, so its creation needs no lstat first.
        with os.scandir(root) as it:
            self.fresh: set[str] = set() if any(True for _ in it) else {""}
        self.created: set[str] = set()

    def invalidate(self) -> None:
        self._cache = {"": (self.root, "")}

    def resolve_dir(self, rel: str, *, create: bool, entry: str) -> Path | None:
        found = self.resolve(rel, create=create, entry=entry)
        return None if found is None else found[0]

    def resolve(self, rel: str, *, create: bool, entry: str) -> tuple[Path, str] | None:
        """Real directory for root-relative ``rel`` (following in-root symlinks) and its
        real root-relative path.

        With ``create``, missing components become directories; otherwise a
        component missing from the root gives None."""
        hit = self._cache.get(rel)
        if hit is not None:
            return hit

        def probe(child: str) -> str | None:
            if child in self.writes.pending:
                self.writes.drain()  # see the file in flight before judging the path
            real = self.root / child
            kind, target = self._lookup(child, real)
            if kind == "symlink":
                return target
            if kind in ("missing", "lowerdir"):
                if not create:
                    raise _Missing
                self._make_dir(child, real)
            elif kind != "dir":
                raise LayerError(f"layer entry {entry!r}: /{child} exists and is not a directory")
            return None

        try:
            done = rootpath.walk(rel, probe, strict=True)
        except _Missing:
            return None
        except rootpath.RootEscapeError as e:
            raise UnsafeLayerError(f"layer entry {entry!r} {e.reason}") from None
        except rootpath.SymlinkLoopError:
            raise UnsafeLayerError(f"layer entry {entry!r}: too many symlink levels") from None
        result = (self.root.joinpath(*done), "/".join(done)) if done else (self.root, "")
        self._cache[rel] = result
        return result

    def _lookup(self, child: str, real: Path) -> tuple[str, str | None]:
        try:
            st = os.lstat(real)
        except FileNotFoundError:
            st = None
        if st is not None:
            if is_whiteout(st) and self.view is not None:
                return "missing", None
            return self._classify(real, st)
        if self.view is None or self._hidden_in_upper(child):
            return "missing", None
        found = self.view.lookup(child)
        if found is None:
            return "missing", None
        kind, target = self._classify(found[0], found[1])
        # A lower-only directory must be copied up before anything is written in it.
        return ("lowerdir", None) if kind == "dir" else (kind, target)

    @staticmethod
    def _classify(path: Path, st: os.stat_result) -> tuple[str, str | None]:
        if stat.S_ISDIR(st.st_mode):
            return "dir", None
        if stat.S_ISLNK(st.st_mode):
            return "symlink", os.readlink(path)
        return "other", None

    def _hidden_in_upper(self, child: str) -> bool:
        """Whether an opaque dir in the upper hides the lower entries of ``child``."""
        parent = child
        while parent:
            parent = split_rel(parent)[0]
            p = self.root / parent if parent else self.root
            if p.is_dir() and is_opaque(p):
                return True
        return False

    def _make_dir(self, child: str, real: Path) -> None:
        try:
            st = os.lstat(real)
            if is_whiteout(st):
                # Re-creating a deleted lower dir in the upper: hide its old contents.
                os.unlink(real)
                os.mkdir(real, 0o755)
                os.setxattr(real, OPAQUE_XATTRS[0], b"y")
                self.fresh.add(child)
                self.created.add(child)
                return
        except FileNotFoundError:
            pass
        lower = None
        if self.view is not None and not self._hidden_in_upper(child):
            lower = self.view.lookup(child)
        os.mkdir(real, 0o755)
        self.fresh.add(child)
        self.created.add(child)
        if lower is not None and stat.S_ISDIR(lower[1].st_mode):
            lst = lower[1]
            os.chown(real, lst.st_uid, lst.st_gid)
            os.chmod(real, stat.S_IMODE(lst.st_mode))
            os.utime(real, ns=(lst.st_atime_ns, lst.st_mtime_ns))


class _Applier:
    def __init__(self, root: Path, overlay_upper: bool, lowers: Sequence[Path]) -> None:
        self.root = root
        self.upper = overlay_upper
        self.view = LowerView(lowers) if overlay_upper else None
        self.writes = _Writes()
        self.resolver = _ParentDirs(root, self.view, self.writes)
        self.added: set[str] = set()
        self.dir_times: list[tuple[Path, int]] = []

    # entry dispatch ---------------------------------------------------------

    def apply(self, tf: tarfile.TarFile, source: _Prefetch, m: tarfile.TarInfo) -> None:
        rel = _member_path(m.name)
        if rel == "":
            return  # the root's own attributes belong to the snapshot, not the layer
        parent, base = split_rel(rel)
        if base.startswith(WHITEOUT_PREFIX):
            self.writes.drain()
            if base == OPAQUE_MARKER:
                self._opaque(parent, rel)
            elif not base.startswith(WHITEOUT_PREFIX * 2):
                self._whiteout(parent, base[len(WHITEOUT_PREFIX) :], rel)
            return
        found = self.resolver.resolve(parent, create=True, entry=m.name)
        assert found is not None
        pdir, preal = found
        real = f"{preal}/{base}" if preal else base
        if real in self.writes.pending:
            self.writes.drain()  # the same name twice: the later entry wins
        absent = preal in self.resolver.fresh and real not in self.resolver.created
        self.resolver.created.add(real)
        self._create(tf, source, m, pdir / base, real, absent)
        self.added.add(rel)

    def close(self) -> None:
        """Wait for the writer threads (also after an error: nothing runs on after us)."""
        self.writes.close()

    def _remove(self, path: Path) -> None:
        self.writes.drain()
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
            self.resolver.invalidate()
            self.resolver.fresh.clear()
        else:
            os.unlink(path)
            if stat.S_ISLNK(st.st_mode):
                self.resolver.invalidate()

    def _whiteout(self, parent: str, name: str, entry: str) -> None:
        victim = f"{parent}/{name}" if parent else name
        if victim in self.added:
            return  # whiteouts only hide lower layers
        if self.upper:
            found = self.resolver.resolve(parent, create=True, entry=entry)
            assert found is not None
            self.resolver.fresh.discard(found[1])
            self._remove(found[0] / name)
            os.mknod(found[0] / name, stat.S_IFCHR | 0o000, os.makedev(0, 0))
            return
        pdir = self.resolver.resolve_dir(parent, create=False, entry=entry)
        if pdir is not None:
            self._remove(pdir / name)

    def _opaque(self, rel_dir: str, entry: str) -> None:
        d = self.resolver.resolve_dir(rel_dir, create=True, entry=entry)
        assert d is not None
        prefix = f"{rel_dir}/" if rel_dir else ""
        with os.scandir(d) as it:
            names = [e.name for e in it]
        for name in names:
            if prefix + name not in self.added:
                self._remove(d / name)
        if self.upper:
            os.setxattr(d, OPAQUE_XATTRS[0], b"y")

    # creating entries -------------------------------------------------------

    def _create(self, tf: tarfile.TarFile, source: _Prefetch, m: tarfile.TarInfo, target: Path,
                real: str, absent: bool) -> None:
        existing: os.stat_result | None = None
        if not absent:
            try:
                existing = os.lstat(target)
            except FileNotFoundError:
                pass
        was_whiteout = existing is not None and self.upper and is_whiteout(existing)
        if m.isdir() and existing is not None and stat.S_ISDIR(existing.st_mode):
            pass  # both directories: only the attributes change
        elif existing is not None:
            self._remove(target)
        if m.isreg() and not m.issparse():
            if source.tell() != m.offset_data:
                source.seek(m.offset_data)
            if m.size <= _ASYNC_MAX:
                data = source.read(m.size)
                if len(data) != m.size:
                    raise LayerError(f"malformed layer: entry {m.name!r} is truncated")
                self.writes.submit(real, str(target), data, m)
            else:
                _write_file(str(target), None, m, source)
            return
        if m.isreg():
            self._write_sparse(tf, m, target)
        elif m.isdir():
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                os.mkdir(target, 0o700)
                self.resolver.fresh.add(real)
                if was_whiteout:
                    os.setxattr(target, OPAQUE_XATTRS[0], b"y")
        elif m.issym():
            os.symlink(m.linkname, target)
            self.resolver.invalidate()
        elif m.islnk():
            self.writes.drain()
            self._hardlink(m, target)
            return  # the inode's attributes came with its first path
        elif m.ischr() or m.isblk():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(target, kind | 0o600, os.makedev(m.devmajor, m.devminor))
        elif m.isfifo():
            os.mkfifo(target, 0o600)
        else:
            raise LayerError(f"layer entry {m.name!r} has unsupported type {m.type!r}")
        self._set_attrs(m, target)

    def _write_sparse(self, tf: tarfile.TarFile, m: tarfile.TarInfo, target: Path) -> None:
        src = tf.extractfile(m)
        assert src is not None
        fd = os.open(target, _CREATE_FLAGS, 0o600)
        try:
            while chunk := src.read(_COPY):
                os.write(fd, chunk)
        finally:
            os.close(fd)

    def _hardlink(self, m: tarfile.TarInfo, target: Path) -> None:
        src_rel = _member_path(m.linkname)
        if src_rel == "":
            raise LayerError(f"layer entry {m.name!r} hardlinks to the root directory")
        parent, base = split_rel(src_rel)
        found = self.resolver.resolve(parent, create=self.upper, entry=m.name)
        if found is None:
            raise LayerError(f"layer entry {m.name!r}: hardlink target {m.linkname!r} not found")
        src = found[0] / base
        if self.upper and not os.path.lexists(src):
            self.resolver.fresh.discard(found[1])
            self._copy_up(src_rel, src, m.name)
        try:
            st = os.lstat(src)
        except FileNotFoundError:
            raise LayerError(
                f"layer entry {m.name!r}: hardlink target {m.linkname!r} not found"
            ) from None
        if stat.S_ISDIR(st.st_mode):
            raise LayerError(f"layer entry {m.name!r}: hardlink to directory {m.linkname!r}")
        os.link(src, target, follow_symlinks=False)

    def _copy_up(self, rel: str, dest: Path, entry: str) -> None:
        found = self.view.lookup(rel) if self.view is not None else None
        if found is None:
            raise LayerError(f"layer entry {entry!r}: hardlink target {rel!r} not found")
        path, st = found
        if stat.S_ISREG(st.st_mode):
            shutil.copy2(path, dest, follow_symlinks=False)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(path), dest)
        else:
            raise LayerError(f"layer entry {entry!r}: cannot hardlink to {rel!r}")
        os.chown(dest, st.st_uid, st.st_gid, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(dest, stat.S_IMODE(st.st_mode))

    def _set_attrs(self, m: tarfile.TarInfo, target: Path) -> None:
        try:
            os.chown(target, m.uid, m.gid, follow_symlinks=False)
        except PermissionError:
            if _IS_ROOT:
                raise
        _set_xattrs(m, str(target))
        if not m.issym():
            os.chmod(target, m.mode & 0o7777)
        ns = round(float(m.mtime) * 1e9)
        if m.isdir():
            self.dir_times.append((target, ns))
        else:
            os.utime(target, ns=(ns, ns), follow_symlinks=False)

    def finish(self) -> None:
        """Directory mtimes last: creating their children changed them."""
        self.writes.drain()
        for path, ns in reversed(self.dir_times):
            try:
                os.utime(path, ns=(ns, ns), follow_symlinks=False)
            except FileNotFoundError:
                continue


__all__ = ["UnsafeLayerError", "apply_layer"]
