"""ADD's extraction of a local archive, with the semantics BuildKit gets from moby's Untar.

Unlike applying an image layer (:mod:`buildkit_py.snapshot.apply`), nothing here is a
whiteout: every entry is written as named. Rules kept from BuildKit:

- an archive is a regular file that decompresses (plain, gzip, bzip2, xz or zstd, sniffed
  by magic bytes, never by name) and whose first tar header reads;
- the destination directory is created 0755 with the copy's owner; entries are extracted
  as if the destination were the root (symlinks resolve inside it);
- an existing path is replaced unless both it and the entry are directories (then merged,
  taking the entry's metadata); parents missing from the archive are made 0755, 0:0;
- each entry takes its header's owner, or the copy's ``--chown`` owner when given; a
  hardlink entry applies its header's owner and mode to the shared inode;
- directory times are set last, once nothing more is written into them.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import os
import shutil
import stat
import tarfile
from collections.abc import Iterator
from typing import BinaryIO, cast

from buildkit_py import rootpath
from buildkit_py.errors import BuildError
from buildkit_py.worker.fileops import Owner, mkdir_parents

_XATTR_PREFIX = "SCHILY.xattr."
_SNIFF = 8


def _compression(head: bytes) -> str:
    if head.startswith(b"BZh"):
        return "bzip2"
    if head.startswith(b"\x1f\x8b\x08"):
        return "gzip"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"\x28\xb5\x2f\xfd") or (
            len(head) >= 4 and int.from_bytes(head[:4], "little") & 0xFFFFFFF0 == 0x184D2A50):
        return "zstd"
    return ""


@contextlib.contextmanager
def _decompressed(path: str) -> Iterator[BinaryIO]:
    with open(path, "rb") as raw:
        kind = _compression(raw.read(_SNIFF))
        raw.seek(0)
        stream: BinaryIO
        if kind == "gzip":
            stream = cast(BinaryIO, gzip.GzipFile(fileobj=raw))
        elif kind == "bzip2":
            stream = cast(BinaryIO, bz2.BZ2File(raw))
        elif kind == "xz":
            stream = cast(BinaryIO, lzma.LZMAFile(raw))
        elif kind == "zstd":
            import zstandard  # reason: only zstd layers need it

            stream = cast(BinaryIO, zstandard.ZstdDecompressor().stream_reader(
                raw, read_across_frames=True))
        else:
            stream = raw
        with stream:
            yield stream


def _open_tar(stream: BinaryIO) -> tarfile.TarFile:
    return tarfile.open(fileobj=stream, mode="r|", encoding="utf-8",
                        errors="surrogateescape")


def is_archive(path: str) -> bool:
    """Whether ``path`` (a host path) is a regular file holding a possibly compressed tar."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        with _decompressed(path) as stream, _open_tar(stream) as tf:
            return tf.next() is not None
    except Exception:  # anything unreadable is "not an archive": it is copied instead
        return False


def untar(archive: str, root: str, dest: str, *, owner: tuple[int, int] | None,
          timestamp: int | None) -> None:
    """Extract the archive at host path ``archive`` into container dir ``dest`` of ``root``.

    ``owner`` overrides every entry's owner; ``timestamp`` (seconds) dates created dest dirs.
    """
    host_dest = rootpath.resolve(root, dest)
    mkdir_parents(root, dest, Owner(*owner) if owner else None, timestamp)
    try:
        with _decompressed(archive) as stream, _open_tar(stream) as tf:
            _Extractor(host_dest, owner).run(tf)
    except BuildError:
        raise
    except EOFError:
        raise BuildError("unexpected EOF") from None  # Go's io.ErrUnexpectedEOF
    except tarfile.ReadError as err:
        if "unexpected end of data" in str(err):
            raise BuildError("unexpected EOF") from None
        raise BuildError(f"failed to extract {os.path.basename(archive)}: {err}") from None
    except (tarfile.TarError, OSError, ValueError, lzma.LZMAError) as err:
        raise BuildError(f"failed to extract {os.path.basename(archive)}: {err}") from None


class _Extractor:
    def __init__(self, dest: str, owner: tuple[int, int] | None) -> None:
        self.dest = dest
        self.owner = owner
        self.dirs: list[tuple[str, int]] = []

    def run(self, tf: tarfile.TarFile) -> None:
        for member in tf:
            self._entry(tf, member)
        for path, mtime in self.dirs:
            with contextlib.suppress(FileNotFoundError):
                os.utime(path, (mtime, mtime), follow_symlinks=False)

    def _host(self, name: str, *, follow_final: bool = False) -> str:
        return rootpath.resolve(self.dest, name, follow_final=follow_final)

    def _entry(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        name = os.path.normpath(m.name)
        if name.startswith("../") or name == "..":
            raise BuildError(f"archive entry {m.name!r} is outside of the destination")
        parent = os.path.dirname(name.strip("/"))
        if parent and not os.path.lexists(self._host(parent, follow_final=False)):
            self._implied_dirs(parent)
        path = self._host(name)
        existing = None
        with contextlib.suppress(FileNotFoundError):
            existing = os.lstat(path)
        if existing is not None:
            both_dirs = stat.S_ISDIR(existing.st_mode) and m.isdir()
            if stat.S_ISDIR(existing.st_mode) and name in (".", "/"):
                return
            if not both_dirs:
                if stat.S_ISDIR(existing.st_mode):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
        perm = m.mode & 0o7777
        if m.isdir():
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                os.mkdir(path, 0o700)
        elif m.isreg():
            src = tf.extractfile(m)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:
                if src is not None:
                    shutil.copyfileobj(src, out, 1 << 20)
        elif m.islnk():
            target = self._host(os.path.normpath(m.linkname))
            os.link(target, path, follow_symlinks=False)
        elif m.issym():
            os.symlink(m.linkname, path)
        elif m.ischr() or m.isblk():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(path, kind | perm, os.makedev(m.devmajor, m.devminor))
        elif m.isfifo():
            os.mkfifo(path, perm)
        else:
            raise BuildError(f"unhandled tar header type {m.type!r} for {m.name!r}")
        os.lchown(path, *(self.owner or (m.uid, m.gid)))
        for key, value in m.pax_headers.items():
            if key.startswith(_XATTR_PREFIX):
                with contextlib.suppress(OSError):
                    os.setxattr(path, key[len(_XATTR_PREFIX):],
                                value.encode("utf-8", "surrogateescape"),
                                follow_symlinks=False)
        if m.issym():
            os.utime(path, (m.mtime, m.mtime), follow_symlinks=False)
            return
        if m.islnk() and os.path.islink(path):
            return  # a hardlink to a symlink: no chmod or times through it
        os.chmod(path, perm)  # after chown, which clears setuid bits
        if m.isdir():
            self.dirs.append((path, int(m.mtime)))
        else:
            os.utime(path, (m.mtime, m.mtime))

    def _implied_dirs(self, parent: str) -> None:
        """Parents the archive has no entry for: 0755, owned by root (as moby's Untar)."""
        missing: list[str] = []
        probe = parent
        while probe and not os.path.lexists(self._host(probe)):
            missing.append(probe)
            probe = os.path.dirname(probe)
        for rel in reversed(missing):
            host = self._host(rel)
            os.mkdir(host, 0o755)
            os.chmod(host, 0o755)

