"""Parallel gzip of layers: one valid gzip member whose bytes depend only on the input and
the options (never on the thread count or the write sizes), with each engine."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import zlib

import pytest

from buildkit_py.snapshot import Compression, LayerWriter, deflate
from buildkit_py.snapshot import compression as comp

MiB = 1 << 20


def _payload() -> bytes:
    # random blocks, zeros and text that repeats across block boundaries (the 32 KiB
    # dictionary each block is primed with matters)
    text = b"".join(b"line %d of a repeated text\n" % (i % 977) for i in range(120_000))
    return os.urandom(2 * MiB + 12345) + bytes(MiB + 7) + text


def _gzip(data: bytes, level: int | None, workers: int, write: int) -> bytes:
    enc = comp._Gzip(level, workers=workers)
    out = [part for i in range(0, len(data), write) for part in enc.compress(data[i:i + write])]
    return b"".join(out + enc.flush())


def _one_member(blob: bytes) -> bytes:
    z = zlib.decompressobj(16 + zlib.MAX_WBITS)
    plain = z.decompress(blob) + z.flush()
    assert z.eof and z.unused_data == b""
    return plain


@pytest.mark.parametrize("level", [None, 1, 6, 9])
def test_bytes_depend_only_on_input_and_level(level: int | None) -> None:
    data = _payload()
    blobs = {_gzip(data, level, workers, write)
             for workers, write in ((1, 64 * 1024), (2, MiB), (4, 3 * MiB + 1), (8, len(data)))}
    assert len(blobs) == 1
    blob = blobs.pop()
    assert _one_member(blob) == data
    assert gzip.decompress(blob) == data
    assert blob[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + bytes(
        [2 if level == 9 else 4 if level == 1 else 0, 255])


def test_explicit_level_six_is_zlibs_and_default_is_the_engines() -> None:
    data = _payload()
    explicit = _gzip(data, 6, 2, MiB)
    default = _gzip(data, None, 2, MiB)
    name, _ = deflate.engine()
    if name == "zlib":
        assert default == explicit
    else:
        assert default != explicit
    assert _one_member(default) == _one_member(explicit) == data


def test_layer_writer_digest_is_stable_and_names_the_plain_tar() -> None:
    data = _payload()
    descs = []
    for write in (4096, 5 * MiB):
        out = io.BytesIO()
        w = LayerWriter(out, Compression.GZIP)
        for i in range(0, len(data), write):
            w.write(data[i:i + write])
        desc = w.close()
        assert desc.digest == "sha256:" + hashlib.sha256(out.getvalue()).hexdigest()
        assert desc.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
        assert _one_member(out.getvalue()) == data
        descs.append(desc)
    assert descs[0] == descs[1]


def test_empty_input_is_a_valid_gzip_of_nothing() -> None:
    assert _one_member(_gzip(b"", None, 2, MiB)) == b""
