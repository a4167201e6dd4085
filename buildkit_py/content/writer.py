"""Streaming ingestion of one blob: hash while writing, atomic commit.

Bytes go to a temp file under ``<root>/content/ingest/``; commit checks size and
digest, fsyncs, and renames into ``blobs/sha256/<hex>``. A killed writer leaves at
most a stale ingest file (removed by ``gc``), never a half-written visible blob.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from buildkit_py.content.errors import ContentError, DigestMismatchError

_BUFFER = 1 << 20


class ContentWriter:
    """Writes one blob; obtain it from ``ContentStore.writer()``."""

    def __init__(
        self,
        ingest_dir: Path,
        expected_digest: str | None,
        expected_size: int | None,
        publish: Callable[[Path, str], None],
    ) -> None:
        self.expected_digest = expected_digest
        self.expected_size = expected_size
        self._publish = publish
        self._hash = hashlib.sha256()
        self._size = 0
        fd, name = _mkstemp(ingest_dir)
        self._path = Path(name)
        # The lock tells gc this ingest file is alive; it dies with the process.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._file: BinaryIO = os.fdopen(fd, "wb", buffering=_BUFFER)
        self._digest: str | None = None
        self._closed = False

    @property
    def path(self) -> str:
        """The ingest file the bytes go to until the commit publishes it."""
        return str(self._path)

    def flush(self) -> None:
        """Hand what was written to the file (so another reader of it sees it)."""
        self._file.flush()

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    @property
    def digest(self) -> str:
        """The committed digest (after commit), else the digest of the bytes so far."""
        return self._digest or f"sha256:{self._hash.copy().hexdigest()}"

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._closed:
            raise ContentError("write to a closed content writer")
        self._hash.update(data)
        self._file.write(data)
        n = len(data)
        self._size += n
        if self.expected_size is not None and self._size > self.expected_size:
            self.abort()
            raise DigestMismatchError(
                f"content larger than expected size {self.expected_size}"
                + (f" for {self.expected_digest}" if self.expected_digest else "")
            )
        return n

    def commit(self) -> str:
        """Verify, persist and publish the blob; returns its digest."""
        if self._digest is not None:
            return self._digest
        if self._closed:
            raise ContentError("commit of an aborted content writer")
        digest = f"sha256:{self._hash.hexdigest()}"
        try:
            if self.expected_size is not None and self._size != self.expected_size:
                raise DigestMismatchError(
                    f"content size {self._size} != expected {self.expected_size}"
                    + (f" for {self.expected_digest}" if self.expected_digest else "")
                )
            if self.expected_digest is not None and digest != self.expected_digest:
                raise DigestMismatchError(
                    f"content digest {digest} != expected {self.expected_digest}"
                )
            self._file.flush()
            os.fsync(self._file.fileno())
            os.fchmod(self._file.fileno(), 0o444)
            self._publish(self._path, digest)
        except BaseException:
            self.abort()
            raise
        self._close_file()
        self._digest = digest
        return digest

    def abort(self) -> None:
        """Discard everything written; idempotent."""
        if self._closed:
            return
        self._close_file()
        self._path.unlink(missing_ok=True)

    def _close_file(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._file.close()
            except OSError:
                pass


def _mkstemp(directory: Path) -> tuple[int, str]:
    return tempfile.mkstemp(prefix="ingest-", dir=directory)
