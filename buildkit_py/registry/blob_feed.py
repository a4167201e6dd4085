"""A blob's bytes handed to a reader while they download, so a layer is unpacked in the
same pass that stores it.

A pull writes each blob to the content store, verifying its digest as it streams; an
image source used to unpack a layer only after that, reading it back. A feed follows the
store writer's ingest file instead: the download names the file (:meth:`BlobFeed.writing`)
and says how many bytes it has written to it (:meth:`BlobFeed.data`, after a flush), and
the unpacker reads them from that file as they come, from the page cache. The reader
only sees the end of the stream once the download has checked the digest
(:meth:`BlobFeed.complete`), and the unpacker commits nothing before that.

The feed holds no bytes of its own, so a download far ahead of its reader (the usual case
on a fast link: unpacking is the slower half, and a layer waits for the one below it)
costs no memory, and the reader never waits for a download to end before going on. (It
used to keep up to 16 MiB per layer in memory and, once a download outran that, make its
reader wait for the whole blob: a 200 MB base of three layers pulled with ~95 MB peak
instead of ~60.) The file stays readable through the commit's rename, and when the store
already had the blob, through the ingest file's removal. A download that starts over
voids what the reader got (:class:`FeedLost`: the unpacker starts again from the stored
blob), and one that fails ends the feed the same way.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import BinaryIO


class FeedLost(Exception):
    """The feed cannot give the whole blob: read it from the content store instead."""


class BlobFeed:
    """Download side: :meth:`writing`, :meth:`data`, then :meth:`complete`, :meth:`abandon`
    or :meth:`failed`. Reader side: :meth:`read` (as a file), :meth:`close`,
    :meth:`stored`. ``open_stored`` opens the blob once it is in the content store."""

    def __init__(self, open_stored: Callable[[], BinaryIO]) -> None:
        self._open_stored = open_stored
        self._fd: int | None = None  # the ingest file being written, opened for reading
        self._written = 0  # bytes of it the download has flushed
        self._read = 0  # bytes handed to the reader
        self._stored_file: BinaryIO | None = None
        self._lost = False
        self.started = False  # some bytes were given
        self._done = False  # the download ended, either way
        self._ok = False  # ... with the blob verified and stored
        self._cond = threading.Condition()

    # the download ---------------------------------------------------------------------

    def writing(self, path: str) -> None:
        """The download writes the blob to ``path`` (the store writer's ingest file)."""
        with self._cond:
            if self._lost or self._fd is not None:
                return
            self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def data(self, chunk: bytes) -> None:
        """``chunk`` was written to the file and flushed."""
        with self._cond:
            self.started = True
            if self._lost or self._fd is None:
                return
            self._written += len(chunk)
            self._cond.notify_all()

    def complete(self) -> None:
        """Every byte was given, the digest matched and the blob is stored."""
        with self._cond:
            self._done = self._ok = True
            self._cond.notify_all()

    def abandon(self, *, stored: bool = False) -> None:
        """The bytes given are void (a retry starts over); ``stored``: the blob was in the
        store all along."""
        with self._cond:
            self._lose()
            if stored:
                self._done = self._ok = True
            self._cond.notify_all()

    def failed(self) -> None:
        """The download gave up: the blob will not be in the store (a no-op once the
        download ended)."""
        with self._cond:
            if self._done:
                return
            self._lose()
            self._done = True
            self._cond.notify_all()

    def _lose(self) -> None:
        self._lost = True
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # the reader -------------------------------------------------------------------------

    def read(self, n: int = -1) -> bytes:
        """``n`` bytes (all when negative), fewer only at the end, which comes once the
        download verified the blob."""
        parts = []
        need = n if n >= 0 else 1 << 62
        while need > 0 and (part := self._read_some(min(need, 1 << 20))):
            parts.append(part)
            need -= len(part)
        return b"".join(parts)

    def _read_some(self, n: int) -> bytes:
        if self._stored_file is not None:
            data = self._stored_file.read(n)
            self._read += len(data)
            return data
        with self._cond:
            while True:
                if self._lost:
                    raise FeedLost("the download could not be followed")
                if self._fd is not None and self._written > self._read:
                    # under the lock: the download side closes the file when it is voided
                    data = os.pread(self._fd, min(n, self._written - self._read), self._read)
                    self._read += len(data)
                    return data
                if self._done and not self._ok:
                    raise FeedLost("the download failed")
                if self._done:
                    break
                self._cond.wait()
            if self._fd is not None:
                return b""  # every byte came through the file
        # stored without this feed seeing it written (it was in the store all along)
        f = self._open_stored()
        f.seek(self._read)
        self._stored_file = f
        return self._read_some(n)

    def close(self) -> None:
        """The reader is done (or gave up): later bytes are dropped."""
        with self._cond:
            self._lose()
            self._cond.notify_all()
        if self._stored_file is not None:
            self._stored_file.close()
            self._stored_file = None

    def stored(self) -> bool:
        """Wait for the download's end; True if the blob (its digest checked) is in the
        content store."""
        with self._cond:
            while not self._done:
                self._cond.wait()
            return self._ok
