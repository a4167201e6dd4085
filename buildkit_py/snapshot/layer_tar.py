"""Serialise layer entries as an OCI layer tar (PAX), streaming.

Rules (the OCI image-layer format as containerd writes it): relative names, directories end
in ``/``, mtimes in whole seconds, empty uname/gname, the first path of an inode is a
regular entry and later ones are hardlink entries, whiteouts are empty ``.wh.<name>`` files
dated 1970-01-01 (containerd 2.0), opaque directories get ``.wh..wh..opq`` (the differs in
``diff`` list whiteouts instead, as BuildKit does), sockets are skipped, and only the
``security.capability`` xattr is kept (as BuildKit's differ does). The same entries over the
same tree give the same bytes, and the bytes of BuildKit's layer (Go's archive/tar headers,
see ``tar_header``). The archive ends with two zero blocks and no record padding (like Go's
archive/tar).

Exporting is per-entry Python work, so the hot path avoids repeats: headers come
from ``tar_header`` (one format for the common case), the change
walk's lstat is reused, a file up to 1 MiB is read with one call, and headers and
data are joined into 1 MiB writes to the sink.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Sequence
from typing import Protocol

from buildkit_py.snapshot.compression import Compression, LayerDescriptor, LayerWriter, Writable
from buildkit_py.snapshot.diff import CAPABILITY_XATTR, EntryKind, LayerEntry
from buildkit_py.snapshot.errors import LayerError
from buildkit_py.snapshot.tar_header import (
    BLKTYPE,
    CHRTYPE,
    DIRTYPE,
    FIFOTYPE,
    LNKTYPE,
    REGTYPE,
    SYMTYPE,
    header,
)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
BLOCK = 512
# Chunk size for large files, and the alignment their reads keep: the gzip writer deflates
# 1 MiB blocks of the stream, so a chunk that starts on a block's edge is deflated where it
# lies, while one that straddles two blocks is copied to assemble them.
_READ = 1 << 20
_WHOLE = 1 << 20  # files up to this size are read with one call
_FLUSH = 1 << 20  # bytes gathered before one write to the sink
_ZERO_BLOCK = bytes(BLOCK)
DEFAULT_XATTRS: tuple[str, ...] = (CAPABILITY_XATTR,)


class _Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


def _whiteout_name(path: str) -> str:
    parent, _, name = path.rpartition("/")
    return f"{parent}/{WHITEOUT_PREFIX}{name}" if parent else WHITEOUT_PREFIX + name


class _TarEmitter:
    """Builds the archive in ``_FLUSH``-sized writes: headers and small files' data
    are gathered in a list and joined once, large files go out in ``_READ`` chunks."""

    def __init__(
        self, source: str, out: _Sink, source_date_epoch: int | None,
        xattrs: Sequence[str],
    ) -> None:
        self.root = source
        self.prefix = source.rstrip("/") + "/"
        self.out = out
        self.epoch = source_date_epoch
        self.xattrs = tuple(xattrs)
        self.links: dict[tuple[int, int], str] = {}
        self.dir_mtimes: dict[str, int] = {}
        self.parts: list[bytes] = []
        self.pending = 0
        self.written = 0  # bytes handed to ``out``

    def _mtime(self, seconds: float) -> int:
        t = int(seconds)
        return t if self.epoch is None or t <= self.epoch else self.epoch

    def _dir_mtime(self, rel: str) -> int:
        mtime = self.dir_mtimes.get(rel)
        if mtime is None:
            try:
                mtime = self._mtime(os.lstat(self.prefix + rel if rel else self.root).st_mtime)
            except FileNotFoundError:
                mtime = self._mtime(0)
            self.dir_mtimes[rel] = mtime
        return mtime

    def _put(self, data: bytes) -> None:
        self.parts.append(data)
        self.pending += len(data)
        if self.pending >= _FLUSH:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            self.out.write(self.parts[0] if len(self.parts) == 1 else b"".join(self.parts))
            self.written += self.pending
            self.parts = []
            self.pending = 0

    def emit(self, entry: LayerEntry) -> None:
        kind = entry.kind
        if kind is EntryKind.PATH:
            self._emit_path(entry.path, entry.st)
        elif kind is EntryKind.WHITEOUT:
            # containerd (since 2.0) dates whiteouts 1970-01-01, not after their directory
            self._put(header(_whiteout_name(entry.path), REGTYPE, 0, 0, 0, 0, 0))
        else:
            mtime = self._dir_mtime(entry.path)
            self._put(header(f"{entry.path}/{OPAQUE_MARKER}", REGTYPE, 0, 0, 0, 0, mtime))

    def _pax(self, full: str) -> dict[str, str] | None:
        # One listxattr (usually empty) is cheaper than a failing getxattr per name.
        present: list[str] | tuple[str, ...]
        try:
            present = os.listxattr(full, follow_symlinks=False)
        except OSError as e:
            if e.errno in (errno.ENOTSUP, errno.ENODATA):
                return None
            present = self.xattrs  # e.g. E2BIG: ask for each name directly
        if not present:
            return None
        pax: dict[str, str] = {}
        for name in self.xattrs:
            if name in present:
                try:
                    value = os.getxattr(full, name, follow_symlinks=False)
                except OSError:
                    continue
                pax[f"SCHILY.xattr.{name}"] = value.decode("utf-8", "surrogateescape")
        return pax

    def _emit_path(self, rel: str, st: os.stat_result | None) -> None:
        full = self.prefix + rel
        if st is None:
            st = os.lstat(full)
        mode = st.st_mode
        size = 0
        linkname = ""
        major = minor = 0
        if stat.S_ISREG(mode):
            typeflag = REGTYPE
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                first = self.links.get(key)
                if first is None:
                    self.links[key] = rel
                else:
                    typeflag = LNKTYPE
                    linkname = first
            if typeflag is REGTYPE:
                size = st.st_size
        elif stat.S_ISDIR(mode):
            typeflag = DIRTYPE
            rel += "/"
        elif stat.S_ISLNK(mode):
            typeflag = SYMTYPE
            linkname = os.readlink(full)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            typeflag = CHRTYPE if stat.S_ISCHR(mode) else BLKTYPE
            major = os.major(st.st_rdev)
            minor = os.minor(st.st_rdev)
        elif stat.S_ISFIFO(mode):
            typeflag = FIFOTYPE
        else:
            return  # sockets and unknown types are not part of layers
        pax = self._pax(full) if self.xattrs and typeflag is not LNKTYPE else None
        mtime = int(st.st_mtime)
        if self.epoch is not None and mtime > self.epoch:
            mtime = self.epoch
        head = header(rel, typeflag, stat.S_IMODE(mode), st.st_uid, st.st_gid, size, mtime,
                      linkname, major, minor, pax)
        if not size:
            self._put(head)
        elif size <= _WHOLE:  # the common case, inlined: one read, no flush check between
            data = self._read_whole(full, size)
            pad = -size % BLOCK
            self.parts += (head, data, _ZERO_BLOCK[:pad])
            self.pending += len(head) + size + pad
            if self.pending >= _FLUSH:
                self.flush()
        else:
            self._put(head)
            self.flush()
            self._copy_large(full, size)

    def _read_whole(self, full: str, size: int) -> bytes:
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            data = os.read(fd, size)
            if len(data) < size:  # a short read of a regular file means it shrank
                data += self._read(fd, full, size - len(data))
            return data
        finally:
            os.close(fd)

    def _copy_large(self, full: str, size: int) -> None:
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            left = size
            want = _READ - self.written % _READ  # the first read ends on a chunk's edge
            while left > 0:
                chunk = self._read(fd, full, min(want, left))
                self.out.write(chunk)
                left -= len(chunk)
                want = _READ
        finally:
            os.close(fd)
        self.written += size
        pad = -size % BLOCK
        if pad:
            self._put(_ZERO_BLOCK[:pad])

    @staticmethod
    def _read(fd: int, full: str, n: int) -> bytes:
        chunks = []
        while n > 0:
            chunk = os.read(fd, n)
            if not chunk:
                raise LayerError(f"file {full} shrank while being archived")
            chunks.append(chunk)
            n -= len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


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
    emitter = _TarEmitter(os.fspath(source), out, source_date_epoch, xattrs)
    for entry in entries:
        emitter.emit(entry)
    emitter._put(_ZERO_BLOCK * 2)
    emitter.flush()


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
