"""Reading stored blobs with their digest checked on the way out.

Whatever leaves the builder (an OCI/docker layout, a push) is read through
:class:`VerifyingReader`: it hashes the bytes as the caller consumes them, so a blob is
read exactly once, and the read that reaches the blob's end raises
:class:`CorruptContentError` instead of returning bytes that do not match the digest.
The caller therefore never completes an output holding a corrupted blob.
"""

from __future__ import annotations

import hashlib
import os
from typing import BinaryIO

from buildkit_py.content.digest import validate_digest
from buildkit_py.content.errors import CorruptContentError

_CHUNK = 1 << 20


class VerifyingReader:
    """A read-only binary file over one blob whose reads check its digest at the end.

    ``size`` is the blob's length (the file's, when not given). Reads stop at ``size``;
    the one that delivers the last byte raises :class:`CorruptContentError` when the
    bytes read do not hash to ``digest``. Partial reads (sniffing a header) check nothing.
    """

    def __init__(self, f: BinaryIO, digest: str, size: int | None = None) -> None:
        validate_digest(digest)
        self._f = f
        self.digest = digest
        self.size = os.fstat(f.fileno()).st_size if size is None else size
        self._hash = hashlib.sha256()
        self._done = 0
        self.verified = False

    def read(self, n: int = -1) -> bytes:
        left = self.size - self._done
        if n is None or n < 0 or n > left:
            n = left
        data = self._f.read(n) if n else b""
        self._hash.update(data)
        self._done += len(data)
        if not data or self._done >= self.size:
            self._check()
        return data

    def readinto(self, buf: bytearray | memoryview) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def _check(self) -> None:
        if self.verified:
            return
        actual = f"sha256:{self._hash.hexdigest()}"
        if actual != self.digest or self._done != self.size:
            raise CorruptContentError(self.digest, actual)
        self.verified = True

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> VerifyingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def copy_verified(src: VerifyingReader, out: BinaryIO) -> int:
    """Copy all of ``src`` to ``out``; raises CorruptContentError before the last chunk
    is written when the blob is corrupted. Returns the bytes copied."""
    n = 0
    while True:
        data = src.read(_CHUNK)
        if not data:
            return n
        out.write(data)
        n += len(data)


def hash_file(f: BinaryIO) -> str:
    """The ``sha256:<hex>`` digest of the rest of ``f``."""
    h = hashlib.sha256()
    while chunk := f.read(_CHUNK):
        h.update(chunk)
    return f"sha256:{h.hexdigest()}"
