"""The deflate engine behind gzip layer blobs, and why it is ISA-L's when installed.

Every new gzip layer is deflated once, when the image is first exported (``--load`` into
the local store included), so a large layer's export is bounded by deflate speed. Measured
side by side (bench/layer_bench.py's engine rows, 100 MB half random / half text, 1 MiB
pigz-style blocks, 2 cores): zlib -6 56 MB/s on one thread, 80 MB/s on two; zlib-ng -6
87 / 189 MB/s; ISA-L (PyPI ``isal``) at its default level 2 about 960 MB/s on one thread
(no faster on two in that run), for a blob the same size (53.7% vs 53.6%). In
``bench/run.py --cases layer300 --scenarios cold,push`` the push's "exporting to image"
went from 5.1 s to 1.6 s.

So a gzip layer with no ``compression-level`` is deflated by ISA-L (its level 2), and
one with an explicit level by zlib at that level: a user who wants zlib's bytes asks for
``compression-level=6``. Without ``isal`` installed (a platform with no wheel) zlib
deflates every layer.

What it costs: the blob bytes, and so a layer's digest, depend on the engine (and for
ISA-L on its version and the CPU's instruction set); the diff ID never does. No test
compares our gzip bytes with BuildKit's (Go's deflate matches no C engine anyway), and
the engine's name (``engine_name``) is part of the layer cache's key, so one install
always gives one digest for one tar and one set of options. ISA-L's blocks are deflated
through its reusable block compressor (``_ParallelCompress``, what its own threaded gzip
uses): one stream and output buffer per thread instead of a compressor per block, for a
few hundred bytes of difference per MiB from the earlier ``isal`` engine's blocks, hence a
new name.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable
from functools import cache
from typing import Any, cast

# Raw deflate of one block, primed with ``zdict``, ending with a sync flush (byte aligned,
# not final), so blocks concatenate into one stream: (level, block, zdict) -> its bytes in
# two parts (kept apart: joining them would copy the block's output once more).
Buffer = bytes | memoryview
BlockDeflater = Callable[[int | None, Buffer, Buffer], tuple[bytes, bytes]]


def _zlib_block(level: int | None, block: Buffer, zdict: Buffer) -> tuple[bytes, bytes]:
    lvl = 6 if level is None else level
    c = (
        zlib.compressobj(lvl, zlib.DEFLATED, -zlib.MAX_WBITS, 9, zlib.Z_DEFAULT_STRATEGY, zdict)
        if zdict
        else zlib.compressobj(lvl, zlib.DEFLATED, -zlib.MAX_WBITS, 9)
    )
    return c.compress(block), c.flush(zlib.Z_SYNC_FLUSH)


# A worker thread's ISA-L compressor: one stream state and one output buffer, reused for
# every block the thread deflates. A fresh compressor per block allocated and freed both
# each time (with an output grown by reallocation), and glibc's per-thread arenas kept the
# freed pieces: a 300 MB layer's export ended ~25 MB larger than it does with reuse.
_OUT_MARGIN = 1 << 17  # deflate at level 2 grows random 1 MiB blocks by far less


@cache
def _isal_zlib() -> Any:
    """ISA-L's zlib-like module, or None where it is not installed."""
    try:
        # reason: only gzip exports and pulls need it (and it may not be installed)
        from isal import isal_zlib
    except ImportError:
        return None
    return isal_zlib


@cache
def _isal() -> BlockDeflater | None:
    isal_zlib = _isal_zlib()
    # its block compressor is not public API: zlib deflates should it go
    if isal_zlib is None or not hasattr(isal_zlib, "_ParallelCompress"):
        return None
    local = threading.local()

    def block(level: int | None, data: Buffer, zdict: Buffer) -> tuple[bytes, bytes]:
        if level is not None:
            return _zlib_block(level, data, zdict)
        size = len(data) + _OUT_MARGIN
        reused = getattr(local, "deflater", None)
        if reused is None or local.size < size:
            reused = local.deflater = isal_zlib._ParallelCompress(
                buffersize=size, level=isal_zlib.ISAL_DEFAULT_COMPRESSION)
            local.size = size
        # the block ends with a sync flush; the CRC it also returns is the caller's job
        return reused.compress_and_crc(data, zdict)[0], b""

    return block


def engine() -> tuple[str, BlockDeflater]:
    """The name and block deflater of the engine in use (ISA-L when importable)."""
    fast = _isal()
    if fast is not None:
        return "isal-parallel", fast
    return "zlib", _zlib_block


def engine_name() -> str:
    """Names the engine for cache keys: blobs of another engine are not reused."""
    return engine()[0]


# The inflate side: a pulled layer's gunzip. ISA-L's inflate gives the same bytes (any
# valid deflate stream has one decoding) about twice as fast as zlib's (58 MiB of half
# random, half text: 27-30 ms against 56-59 ms).
@cache
def _inflate_engine() -> tuple[Callable[[int], Any], type[Exception]]:
    isal_zlib = _isal_zlib()
    if isal_zlib is None:
        return zlib.decompressobj, zlib.error
    return isal_zlib.decompressobj, cast(type[Exception], isal_zlib.error)


class Gunzip:
    """A decompressor of one gzip member (zlib's interface); whatever the engine, a
    corrupt stream raises ``zlib.error``."""

    def __init__(self) -> None:
        make, self._error = _inflate_engine()
        self._z = make(16 + zlib.MAX_WBITS)

    @property
    def unconsumed_tail(self) -> bytes:
        return cast(bytes, self._z.unconsumed_tail)

    @property
    def unused_data(self) -> bytes:
        return cast(bytes, self._z.unused_data)

    @property
    def eof(self) -> bool:
        return bool(self._z.eof)

    def decompress(self, data: Buffer, max_length: int = 0) -> bytes:
        try:
            return cast(bytes, self._z.decompress(data, max_length))
        except self._error as e:
            raise zlib.error(str(e)) from None
