"""Layer compression: streaming writers that hash while compressing, and a
reader that detects gzip / zstd / plain by magic bytes.

Writers produce (blob digest, blob size, diff ID) in one pass. gzip output is
deterministic (no name, mtime 0, fixed level and engine: ``deflate`` says which engine
and why). Compression and the writes to the destination run on a helper thread so
they overlap with tar generation; zlib, ISA-L, zstd and sha256 release the GIL on large
buffers.
"""

from __future__ import annotations

import collections
import concurrent.futures
import enum
import hashlib
import os
import queue
import struct
import threading
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Protocol, cast, runtime_checkable

from buildkit_py.snapshot import deflate

if TYPE_CHECKING:
    import concurrent.futures

    import zstandard


class Compression(enum.StrEnum):
    GZIP = "gzip"
    ZSTD = "zstd"
    UNCOMPRESSED = "uncompressed"


OCI_MEDIA_TYPES = {
    Compression.UNCOMPRESSED: "application/vnd.oci.image.layer.v1.tar",
    Compression.GZIP: "application/vnd.oci.image.layer.v1.tar+gzip",
    Compression.ZSTD: "application/vnd.oci.image.layer.v1.tar+zstd",
}
DOCKER_MEDIA_TYPES = {
    Compression.UNCOMPRESSED: "application/vnd.docker.image.rootfs.diff.tar",
    Compression.GZIP: "application/vnd.docker.image.rootfs.diff.tar.gzip",
}
DEFAULT_LEVELS = {Compression.GZIP: 6, Compression.ZSTD: 3, Compression.UNCOMPRESSED: 0}

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

_CHUNK = 1 << 20


@dataclass(frozen=True)
class LayerDescriptor:
    """A written layer blob: ``digest``/``size`` of the bytes as stored and the
    ``diff_id`` (sha256 of the uncompressed tar)."""

    digest: str
    size: int
    diff_id: str
    compression: Compression
    uncompressed_size: int

    @property
    def media_type(self) -> str:
        return OCI_MEDIA_TYPES[self.compression]


class Writable(Protocol):
    """Where a layer blob goes: a file, a socket wrapper, a content-store writer."""

    def write(self, data: bytes, /) -> object: ...


@runtime_checkable
class HashingWritable(Writable, Protocol):
    """A destination that hashes what it is given (a content-store writer): a layer
    writer takes the blob's digest from it rather than hashing the same bytes again."""

    @property
    def digest(self) -> str:
        """sha256 of the bytes written so far, ``sha256:<hex>``."""


class _Encoder(Protocol):
    """Compressed output comes back as parts in order: joining them would copy it."""

    def compress(self, data: bytes) -> list[bytes]: ...

    def flush(self) -> list[bytes]: ...


class _Identity:
    def compress(self, data: bytes) -> list[bytes]:
        return [data]

    def flush(self) -> list[bytes]:
        return []


_GZIP_BLOCK = 1 << 20
_DICT = 32 * 1024


class _Gzip:
    """gzip with a fixed header (no name, mtime 0, OS unknown), compressed
    pigz-style: fixed 1 MiB blocks, each primed with the previous block's last
    32 KiB and deflated on a thread pool (the engines release the GIL). The bytes
    depend only on the input, the level (None: the engine's default) and the engine,
    never on the thread count or write sizes."""

    def __init__(self, level: int | None, *, workers: int | None = None) -> None:
        self._level = level
        self._deflate = deflate.engine()[1]
        self._workers = max(1, min(8, os.cpu_count() or 1)) if workers is None else workers
        self._crc = 0
        self._len = 0
        self._pending = bytearray()
        self._tail: bytes | memoryview = b""
        self._inflight: collections.deque[concurrent.futures.Future[tuple[bytes, bytes]]] = (
            collections.deque()
        )
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + bytes(
            [2 if level == 9 else 4 if level == 1 else 0, 255]
        )

    def _submit(self, block: bytes | memoryview) -> None:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                self._workers, thread_name_prefix="bkpy-gzip"
            )
        self._inflight.append(self._pool.submit(self._deflate, self._level, block, self._tail))
        # copied: a view would keep the block's whole chunk alive until the next block
        self._tail = bytes(block[-_DICT:])

    def _collect(self, wait_all: bool) -> list[bytes]:
        out: list[bytes] = []
        limit = 0 if wait_all else self._workers
        while self._inflight and (len(self._inflight) > limit or self._inflight[0].done()):
            out += self._inflight.popleft().result()
        return out

    def compress(self, data: bytes) -> list[bytes]:
        self._crc = zlib.crc32(data, self._crc)
        self._len += len(data)
        # Whole blocks are deflated from views of ``data`` (immutable bytes), never
        # copied; only a block that straddles two writes is assembled in ``_pending``.
        view = memoryview(data if isinstance(data, bytes) else bytes(data))
        if self._pending:
            need = _GZIP_BLOCK - len(self._pending)
            self._pending += view[:need]
            view = view[need:]
            if len(self._pending) == _GZIP_BLOCK:
                self._submit(bytes(self._pending))
                self._pending.clear()
        while len(view) >= _GZIP_BLOCK:
            self._submit(view[:_GZIP_BLOCK])
            view = view[_GZIP_BLOCK:]
        if view:
            self._pending += view
        out = self._collect(wait_all=False)
        if out and self._header:
            out.insert(0, self._header)
            self._header = b""
        return out

    def flush(self) -> list[bytes]:
        if self._pending:
            self._submit(bytes(self._pending))
            self._pending.clear()
        body = self._collect(wait_all=True)
        if self._pool is not None:
            self._pool.shutdown()
        last = 6 if self._level is None else self._level
        final = zlib.compressobj(last, zlib.DEFLATED, -zlib.MAX_WBITS, 9).flush()
        out = [self._header, *body, final,
               struct.pack("<II", self._crc & 0xFFFFFFFF, self._len & 0xFFFFFFFF)]
        self._header = b""
        return out


def _zstd_encoder(level: int) -> _Encoder:
    import zstandard  # reason: only zstd layers need it

    cctx = zstandard.ZstdCompressor(level=level, threads=-1)
    obj: zstandard.ZstdCompressionObj = cctx.compressobj()

    class _Zstd:
        def compress(self, data: bytes) -> list[bytes]:
            return [obj.compress(data)]

        def flush(self) -> list[bytes]:
            return [obj.flush()]

    return _Zstd()


def make_encoder(compression: Compression, level: int | None = None) -> _Encoder:
    """The encoder of ``compression`` at ``level``; a gzip level of None is the deflate
    engine's default (``deflate``), an explicit one is zlib's."""
    if compression is Compression.GZIP:
        if level is not None and not 0 <= level <= 9:
            raise ValueError(f"gzip compression level {level} out of range 0-9")
        return _Gzip(level)
    lvl = DEFAULT_LEVELS[compression] if level is None else level
    if compression is Compression.ZSTD:
        if not 0 <= lvl <= 22:
            raise ValueError(f"zstd compression level {lvl} out of range 0-22")
        return _zstd_encoder(lvl)
    return _Identity()


class LayerWriter:
    """A write-only stream: takes uncompressed tar bytes, writes the compressed
    blob to ``dest``; ``close()`` returns the LayerDescriptor."""

    def __init__(
        self, dest: Writable, compression: Compression = Compression.GZIP,
        level: int | None = None,
    ) -> None:
        self.compression = Compression(compression)
        self._dest = dest
        self._encoder = make_encoder(self.compression, level)
        self._diff = hashlib.sha256()
        self._blob = hashlib.sha256()
        self._dest_hashes = isinstance(dest, HashingWritable)
        uncompressed = self.compression is Compression.UNCOMPRESSED
        # an uncompressed blob's digest is its diff ID: hashed once, here or by ``dest``
        self._hash_diff = not (uncompressed and self._dest_hashes)
        self._hash_blob = not uncompressed and not self._dest_hashes
        self._usize = 0
        self._csize = 0
        self._buf = bytearray()
        # Two chunks queued keep the compressor fed (reads outrun it); each one more is
        # 1 MiB more held.
        self._q: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._pump, name="bkpy-layer-compress",
                                        daemon=True)
        self._thread.start()
        self._result: LayerDescriptor | None = None

    def _emit(self, parts: list[bytes]) -> None:
        for out in parts:
            if out:
                if self._hash_blob:
                    self._blob.update(out)
                self._csize += len(out)
                self._dest.write(out)

    def _pump(self) -> None:
        try:
            while (chunk := self._q.get()) is not None:
                self._emit(self._encoder.compress(chunk))
            self._emit(self._encoder.flush())
        except BaseException as e:
            self._error = e
            # Keep draining so the producer never blocks on a dead consumer.
            while self._q.get() is not None:
                pass

    def _put(self, chunk: bytes) -> None:
        if self._error is not None:
            raise self._error
        if self._hash_diff:
            self._diff.update(chunk)
        self._usize += len(chunk)
        self._q.put(chunk)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        n = len(data)
        if n >= _CHUNK:  # a large write passes as it is, behind what was gathered
            if self._buf:
                self._put(bytes(self._buf))
                self._buf.clear()
            self._put(bytes(data))
            return n
        self._buf += data
        if len(self._buf) >= _CHUNK:
            self._put(bytes(self._buf))
            self._buf.clear()
        return n

    def close(self) -> LayerDescriptor:
        if self._result is not None:
            return self._result
        if self._buf:
            self._put(bytes(self._buf))
            self._buf.clear()
        self._q.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        blob = (cast(HashingWritable, self._dest).digest if self._dest_hashes
                else f"sha256:{self._blob.hexdigest()}")
        diff_id = f"sha256:{self._diff.hexdigest()}" if self._hash_diff else blob
        if self.compression is Compression.UNCOMPRESSED:
            blob = diff_id
        self._result = LayerDescriptor(blob, self._csize, diff_id, self.compression,
                                       self._usize)
        return self._result

    def abort(self) -> None:
        """Stop the helper thread without producing a result."""
        if self._result is None and self._thread.is_alive():
            self._buf.clear()
            self._q.put(None)
            self._thread.join()


class _HashingReader:
    """Reads from ``raw``, hashing and counting every byte that passes."""

    def __init__(self, raw: BinaryIO, prefix: bytes = b"") -> None:
        self._raw = raw
        self._prefix = prefix
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        if self._prefix:
            if n < 0:
                data = self._prefix + self._raw.read()
            else:
                data = self._prefix[:n]
                if len(data) < n:
                    data += self._raw.read(n - len(data))
                self._prefix = self._prefix[n:] if len(self._prefix) > n else b""
            if n < 0:
                self._prefix = b""
        else:
            data = self._raw.read(n)
        self.hash.update(data)
        self.size += len(data)
        return data


class _GzipReader:
    """Streaming gunzip that also accepts concatenated members (``deflate`` says by
    which engine)."""

    def __init__(self, raw: _HashingReader) -> None:
        self._raw = raw
        self._z = deflate.Gunzip()
        self._in_member = False
        self._pending = b""
        self._eof = False

    def read(self, n: int = -1) -> bytes:
        want = n if n >= 0 else 1 << 62
        parts = [self._pending] if self._pending else []
        have = len(self._pending)
        self._pending = b""
        while have < want and not self._eof:
            if self._z.unconsumed_tail:
                data = self._z.decompress(self._z.unconsumed_tail, _CHUNK)
            else:
                raw = self._raw.read(_CHUNK)
                if not raw:
                    if self._in_member:
                        raise EOFError("truncated gzip stream")
                    self._eof = True
                    break
                self._in_member = True
                data = self._z.decompress(raw, _CHUNK)
            while self._z.eof:
                rest = self._z.unused_data
                self._z = deflate.Gunzip()
                self._in_member = bool(rest)
                if rest:
                    data += self._z.decompress(rest, _CHUNK)
            parts.append(data)
            have += len(data)
        out = b"".join(parts)
        if n >= 0 and len(out) > n:
            out, self._pending = out[:n], out[n:]
        return out


class LayerReader:
    """Decompressed view of a layer stream, detecting the compression by magic.

    ``raw_digest``/``raw_size`` cover the bytes read from the source and
    ``diff_id`` the decompressed ones; read to EOF before using them."""

    def __init__(self, raw: BinaryIO) -> None:
        head = raw.read(4)
        self._raw = _HashingReader(raw, head)
        self._plain_hash = hashlib.sha256()
        self.uncompressed_size = 0
        self._inner: _GzipReader | _HashingReader | zstandard.ZstdDecompressionReader
        if head.startswith(GZIP_MAGIC):
            self.compression = Compression.GZIP
            self._inner = _GzipReader(self._raw)
        elif head.startswith(ZSTD_MAGIC):
            import zstandard  # reason: only zstd layers need it

            self.compression = Compression.ZSTD
            self._inner = zstandard.ZstdDecompressor().stream_reader(
                cast(BinaryIO, self._raw), read_size=_CHUNK, read_across_frames=True
            )
        else:
            self.compression = Compression.UNCOMPRESSED
            self._inner = self._raw

    def read(self, n: int = -1) -> bytes:
        data = self._inner.read(n)
        if self.compression is not Compression.UNCOMPRESSED:
            self._plain_hash.update(data)
        self.uncompressed_size += len(data)
        return data

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass

    @property
    def diff_id(self) -> str:
        h = self._raw.hash if self.compression is Compression.UNCOMPRESSED else self._plain_hash
        return f"sha256:{h.hexdigest()}"

    @property
    def raw_digest(self) -> str:
        return f"sha256:{self._raw.hash.hexdigest()}"

    @property
    def raw_size(self) -> int:
        return self._raw.size
