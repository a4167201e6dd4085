"""A blob's bytes handed to a reader while they download, so a layer is unpacked in the
same pass that stores it.

A pull writes each blob to the content store, verifying its digest as it streams; an
image source used to unpack a layer only after that, reading it back. A feed sits beside
the store writer: the download gives it every chunk it writes, and the unpacker reads
them as a file. The reader only sees the end of the stream once the download has checked
the digest (:meth:`BlobFeed.complete`), and the unpacker commits nothing before that.

The feed never slows the download. It buffers at most ``limit`` bytes; a reader that
falls further behind (it waits for the layer below to be unpacked first) loses the feed
(:class:`FeedLost`) and reads the blob from the store once it is there, as before. A
download that starts over or fails voids the feed the same way.
"""

from __future__ import annotations

import collections
import threading

DEFAULT_LIMIT = 64 << 20


class FeedLost(Exception):
    """The feed cannot give the whole blob: read it from the content store instead."""


class BlobFeed:
    """Download side: :meth:`data`, then :meth:`complete` or :meth:`abandon`. Reader
    side: :meth:`read` (as a file), :meth:`stored` to wait for the blob in the store."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._limit = limit
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._lost = False
        self.started = False  # some bytes were given
        self._complete = False
        self._done = False  # the download ended, either way
        self._ok = False  # ... with the blob verified and stored
        self._cond = threading.Condition()

    # the download ---------------------------------------------------------------------

    def data(self, chunk: bytes) -> None:
        with self._cond:
            self.started = True
            if self._lost:
                return
            if self._buffered + len(chunk) > self._limit:
                self._lose()
                return
            self._chunks.append(bytes(chunk))
            self._buffered += len(chunk)
            self._cond.notify_all()

    def complete(self) -> None:
        """Every byte was given, the digest matched and the blob is stored."""
        with self._cond:
            self._complete = not self._lost
            self._done = self._ok = True
            self._cond.notify_all()

    def abandon(self, *, stored: bool = False) -> None:
        """The bytes given are void (a retry starts over, or the download failed);
        ``stored``: the blob is in the store anyway (it already was)."""
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
        """Up to ``n`` bytes (all when negative), fewer only at the verified end."""
        with self._cond:
            while True:
                if self._lost:
                    raise FeedLost("the download could not be followed")
                if self._complete or (n >= 0 and self._buffered >= n):
                    break
                self._cond.wait()
            return self._take(n)

    def _take(self, n: int) -> bytes:
        want = self._buffered if n < 0 else min(n, self._buffered)
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
        return b"".join(parts)

    def close(self) -> None:
        """The reader is done (or gave up): later bytes are dropped."""
        with self._cond:
            self._lose()
            self._cond.notify_all()

    def stored(self) -> bool:
        """Wait for the download's end; True if the blob (its digest checked) is in the
        content store."""
        with self._cond:
            while not self._done:
                self._cond.wait()
            return self._ok
