"""Unpack a layer tar (gzip / zstd / plain, detected by magic) onto a directory.

Two targets:
- a plain directory holding the full tree below (``overlay_upper=False``):
  whiteouts delete, opaque markers empty the directory of lower contents;
- an overlay upper dir over ``lowers`` (``overlay_upper=True``): whiteouts become
  char devices 0:0 and opaque markers the ``trusted.overlay.opaque`` xattr, so the
  lower layers stay untouched.

Unsafe entries (absolute names, ``..`` escapes, writing through a symlink that
leaves the root) raise UnsafeLayerError before anything is written for them.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
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


def apply_layer(
    stream: BinaryIO,
    root: str | os.PathLike[str],
    *,
    overlay_upper: bool = False,
    lowers: Sequence[Path] = (),
) -> ApplyResult:
    """Apply the layer read from ``stream`` to ``root``; returns its digests."""
    reader = LayerReader(stream)
    applier = _Applier(Path(root), overlay_upper, lowers)
    try:
        with tarfile.open(
            fileobj=cast(BinaryIO, reader), mode="r|", encoding="utf-8",
            errors="surrogateescape", bufsize=_COPY,
        ) as tf:
            for member in tf:
                applier.apply(tf, member)
        reader.drain()
    except SnapshotError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, ValueError) as e:
        raise LayerError(f"malformed layer: {e}") from None
    except Exception as e:
        if type(e).__module__.startswith("zstandard") or "zstd" in type(e).__name__.lower():
            raise LayerError(f"malformed zstd layer: {e}") from None
        raise
    applier.finish()
    return ApplyResult(reader.diff_id, reader.raw_digest, reader.raw_size, reader.compression)


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

    def __init__(self, root: Path, view: LowerView | None) -> None:
        self.root = root
        self.view = view  # set in overlay-upper mode
        self._cache: dict[str, Path] = {"": root}

    def invalidate(self) -> None:
        self._cache = {"": self.root}

    def resolve_dir(self, rel: str, *, create: bool, entry: str) -> Path | None:
        """Real directory for root-relative ``rel`` (following in-root symlinks).

        With ``create``, missing components become directories; otherwise a
        component missing from the root gives None."""
        hit = self._cache.get(rel)
        if hit is not None:
            return hit

        def probe(child: str) -> str | None:
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
        result = self.root.joinpath(*done) if done else self.root
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
                return
        except FileNotFoundError:
            pass
        lower = None
        if self.view is not None and not self._hidden_in_upper(child):
            lower = self.view.lookup(child)
        os.mkdir(real, 0o755)
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
        self.resolver = _ParentDirs(root, self.view)
        self.added: set[str] = set()
        self.dir_times: list[tuple[Path, int]] = []

    # entry dispatch ---------------------------------------------------------

    def apply(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        rel = _member_path(m.name)
        if rel == "":
            return  # the root's own attributes belong to the snapshot, not the layer
        parent, base = split_rel(rel)
        if base.startswith(WHITEOUT_PREFIX):
            if base == OPAQUE_MARKER:
                self._opaque(parent, rel)
            elif not base.startswith(WHITEOUT_PREFIX * 2):
                self._whiteout(parent, base[len(WHITEOUT_PREFIX) :], rel)
            return
        pdir = self.resolver.resolve_dir(parent, create=True, entry=m.name)
        assert pdir is not None
        target = pdir / base
        self._create(tf, m, target)
        self.added.add(rel)

    def _remove(self, path: Path) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
            self.resolver.invalidate()
        else:
            os.unlink(path)
            if stat.S_ISLNK(st.st_mode):
                self.resolver.invalidate()

    def _whiteout(self, parent: str, name: str, entry: str) -> None:
        victim = f"{parent}/{name}" if parent else name
        if victim in self.added:
            return  # whiteouts only hide lower layers
        if self.upper:
            pdir = self.resolver.resolve_dir(parent, create=True, entry=entry)
            assert pdir is not None
            self._remove(pdir / name)
            os.mknod(pdir / name, stat.S_IFCHR | 0o000, os.makedev(0, 0))
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

    def _create(self, tf: tarfile.TarFile, m: tarfile.TarInfo, target: Path) -> None:
        try:
            existing: os.stat_result | None = os.lstat(target)
        except FileNotFoundError:
            existing = None
        was_whiteout = existing is not None and self.upper and is_whiteout(existing)
        if m.isdir() and existing is not None and stat.S_ISDIR(existing.st_mode):
            pass  # both directories: only the attributes change
        elif existing is not None:
            self._remove(target)
        if m.isreg():
            self._write_file(tf, m, target)
        elif m.isdir():
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                os.mkdir(target, 0o700)
                if was_whiteout:
                    os.setxattr(target, OPAQUE_XATTRS[0], b"y")
        elif m.issym():
            os.symlink(m.linkname, target)
            self.resolver.invalidate()
        elif m.islnk():
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

    def _write_file(self, tf: tarfile.TarFile, m: tarfile.TarInfo, target: Path) -> None:
        src = tf.extractfile(m)
        assert src is not None
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
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
        pdir = self.resolver.resolve_dir(parent, create=self.upper, entry=m.name)
        if pdir is None:
            raise LayerError(f"layer entry {m.name!r}: hardlink target {m.linkname!r} not found")
        src = pdir / base
        if self.upper and not os.path.lexists(src):
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
        for key, value in m.pax_headers.items():
            if not key.startswith("SCHILY.xattr."):
                continue
            name = key[len("SCHILY.xattr.") :]
            if name.startswith(_SKIPPED_XATTR_PREFIXES):
                continue
            raw = value.encode("utf-8", "surrogateescape")
            try:
                os.setxattr(target, name, raw, follow_symlinks=False)
            except OSError as e:
                raise LayerError(f"layer entry {m.name!r}: cannot set xattr {name}: {e}") from None
        if not m.issym():
            os.chmod(target, m.mode & 0o7777)
        ns = round(float(m.mtime) * 1e9)
        if m.isdir():
            self.dir_times.append((target, ns))
        else:
            os.utime(target, ns=(ns, ns), follow_symlinks=False)

    def finish(self) -> None:
        """Directory mtimes last: creating their children changed them."""
        for path, ns in reversed(self.dir_times):
            try:
                os.utime(path, ns=(ns, ns), follow_symlinks=False)
            except FileNotFoundError:
                continue


__all__ = ["UnsafeLayerError", "apply_layer"]
