"""Serialise layer entries as an OCI layer tar (PAX), streaming.

Rules (reference §5.4): relative names, directories end in ``/``, mtimes in whole
seconds, empty uname/gname, the first path of an inode is a regular entry and
later ones are hardlink entries, whiteouts are empty ``.wh.<name>`` files, opaque
directories get ``.wh..wh..opq``, sockets are skipped, and only the
``security.capability`` xattr is kept (as BuildKit's differ does). The same
entries over the same tree give the same bytes. The archive ends with two zero
blocks and no record padding (like Go's archive/tar).
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from buildkit_py.snapshot.compression import Compression, LayerDescriptor, LayerWriter, Writable
from buildkit_py.snapshot.diff import CAPABILITY_XATTR, EntryKind, LayerEntry
from buildkit_py.snapshot.errors import LayerError

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
BLOCK = 512
_READ = 1 << 20
_ZERO_BLOCK = bytes(BLOCK)
DEFAULT_XATTRS: tuple[str, ...] = (CAPABILITY_XATTR,)


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


def _whiteout_name(path: str) -> str:
    parent, _, name = path.rpartition("/")
    return f"{parent}/{WHITEOUT_PREFIX}{name}" if parent else WHITEOUT_PREFIX + name


def _marker(name: str, mtime: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.REGTYPE
    ti.mode = 0
    ti.mtime = mtime
    ti.uname = ti.gname = ""
    return ti


class _TarEmitter:
    def __init__(
        self, source: Path, out: _Sink, source_date_epoch: int | None,
        xattrs: Sequence[str],
    ) -> None:
        self.source = source
        self.out = out
        self.epoch = source_date_epoch
        self.xattrs = xattrs
        self.links: dict[tuple[int, int], str] = {}

    def _mtime(self, seconds: float) -> int:
        t = int(seconds)
        return t if self.epoch is None or t <= self.epoch else self.epoch

    def _dir_mtime(self, rel: str) -> int:
        try:
            return self._mtime(os.lstat(self.source / rel if rel else self.source).st_mtime)
        except FileNotFoundError:
            return self._mtime(0)

    def _header(self, ti: tarfile.TarInfo) -> None:
        self.out.write(ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def emit(self, entry: LayerEntry) -> None:
        if entry.kind is EntryKind.WHITEOUT:
            parent = entry.path.rpartition("/")[0]
            self._header(_marker(_whiteout_name(entry.path), self._dir_mtime(parent)))
            return
        if entry.kind is EntryKind.OPAQUE:
            self._header(_marker(f"{entry.path}/{OPAQUE_MARKER}", self._dir_mtime(entry.path)))
            return
        self._emit_path(entry.path)

    def _emit_path(self, rel: str) -> None:
        full = self.source / rel
        st = os.lstat(full)
        mode = st.st_mode
        ti = tarfile.TarInfo(rel)
        ti.mode = stat.S_IMODE(mode)
        ti.uid = st.st_uid
        ti.gid = st.st_gid
        ti.uname = ti.gname = ""
        ti.mtime = self._mtime(st.st_mtime)
        copy = False
        if stat.S_ISREG(mode):
            first = None
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                first = self.links.get(key)
                if first is None:
                    self.links[key] = rel
            if first is not None:
                ti.type = tarfile.LNKTYPE
                ti.linkname = first
            else:
                ti.type = tarfile.REGTYPE
                ti.size = st.st_size
                copy = True
        elif stat.S_ISDIR(mode):
            ti.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(mode):
            ti.type = tarfile.SYMTYPE
            ti.linkname = os.readlink(full)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            ti.devmajor = os.major(st.st_rdev)
            ti.devminor = os.minor(st.st_rdev)
        elif stat.S_ISFIFO(mode):
            ti.type = tarfile.FIFOTYPE
        else:
            return  # sockets and unknown types are not part of layers
        if ti.type != tarfile.LNKTYPE:
            pax: dict[str, str] = {}
            for name in self.xattrs:
                try:
                    value = os.getxattr(full, name, follow_symlinks=False)
                except OSError:
                    continue
                pax[f"SCHILY.xattr.{name}"] = value.decode("utf-8", "surrogateescape")
            if pax:
                ti.pax_headers = pax
        self._header(ti)
        if copy:
            self._copy(full, st.st_size)

    def _copy(self, full: Path, size: int) -> None:
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            left = size
            while left > 0:
                chunk = os.read(fd, min(_READ, left))
                if not chunk:
                    raise LayerError(f"file {full} shrank while being archived")
                self.out.write(chunk)
                left -= len(chunk)
        finally:
            os.close(fd)
        pad = -size % BLOCK
        if pad:
            self.out.write(_ZERO_BLOCK[:pad])


def write_layer_tar(
    entries: Iterable[LayerEntry],
    source: str | os.PathLike[str],
    out: _Sink,
    *,
    source_date_epoch: int | None = None,
    xattrs: Sequence[str] = DEFAULT_XATTRS,
) -> None:
    """Write the tar for ``entries`` (paths read from ``source``) to ``out``.

    ``source_date_epoch`` clamps every mtime to at most that value."""
    emitter = _TarEmitter(Path(source), out, source_date_epoch, xattrs)
    for entry in entries:
        emitter.emit(entry)
    out.write(_ZERO_BLOCK * 2)


def export_layer(
    entries: Iterable[LayerEntry],
    source: str | os.PathLike[str],
    dest: Writable,
    *,
    compression: Compression = Compression.GZIP,
    level: int | None = None,
    source_date_epoch: int | None = None,
    xattrs: Sequence[str] = DEFAULT_XATTRS,
) -> LayerDescriptor:
    """Write the compressed layer blob to ``dest``; returns digests and sizes."""
    writer = LayerWriter(dest, compression, level)
    try:
        write_layer_tar(entries, source, writer, source_date_epoch=source_date_epoch,
                        xattrs=xattrs)
    except BaseException:
        writer.abort()
        raise
    return writer.close()
