"""A blob's bytes handed to a reader while they download, so a layer is unpacked in the
same pass that stores it.

A pull writes each blob to the content store, verifying its digest as it streams; an
image source used to unpack a layer only after that, reading it back. A feed sits beside
the store writer: the download gives it every chunk it writes, and the unpacker reads
them as a file. The reader only sees the end of the stream once the download has checked
the digest (:meth:`BlobFeed.complete`), and the unpacker commits nothing before that.

The feed never slows the download and holds at most ``limit`` bytes. A download faster
than its reader (the usual case on a fast link: unpacking is the slower half, and a layer
waits for the one below it) spills: the feed drops what does not fit, and once the blob
is stored the reader goes on from the stored file at the offset it had reached, so no
byte is unpacked twice. A download that starts over voids what the reader got
(:class:`FeedLost`: the unpacker starts again from the stored blob), and one that fails
ends the feed the same way.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import BinaryIO

DEFAULT_LIMIT = 16 << 20


class FeedLost(Exception):
    """The feed cannot give the whole blob: read it from the content store instead."""


class BlobFeed:
    """Download side: :meth:`data`, then :meth:`complete`, :meth:`abandon` or
    :meth:`failed`. Reader side: :meth:`read` (as a file), :meth:`close`, :meth:`stored`.
    ``open_stored`` opens the blob once it is in the content store."""

    def __init__(self, open_stored: Callable[[], BinaryIO], limit: int = DEFAULT_LIMIT
                 ) -> None:
        self._open_stored = open_stored
        self._limit = limit
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._read = 0  # bytes handed to the reader
        self._spilled = False  # bytes were dropped: the rest comes from the stored blob
        self._stored_file: BinaryIO | None = None
        self._lost = False
        self.started = False  # some bytes were given
        self._done = False  # the download ended, either way
        self._ok = False  # ... with the blob verified and stored
        self._cond = threading.Condition()

    # the download ---------------------------------------------------------------------

    def data(self, chunk: bytes) -> None:
        with self._cond:
            self.started = True
            if self._lost or self._spilled:
                return
            if self._buffered + len(chunk) > self._limit:
                self._spilled = True
                return
            self._chunks.append(bytes(chunk))
            self._buffered += len(chunk)
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
        self._chunks.clear()
        self._buffered = 0

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
                if self._buffered:
                    return self._take(n)
                if self._done and not self._ok:
                    raise FeedLost("the download failed")
                if self._done:
                    break  # all that came through is read: the rest is in the store
                self._cond.wait()
            spilled = self._spilled
        if not spilled:
            return b""  # every byte came through the feed
        f = self._open_stored()
        f.seek(self._read)
        self._stored_file = f
        return self._read_some(n)

    def _take(self, n: int) -> bytes:
        want = min(n, self._buffered)
        parts = []
        got = 0
        while got < want:
            chunk = self._chunks.popleft()
            if got + len(chunk) > want:
                keep = want - got
                self._chunks.appendleft(chunk[keep:])
                chunk = chunk[:keep]
            parts.append(chunk)
            got += len(chunk)
        self._buffered -= got
        self._read += got
        return b"".join(parts)

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
