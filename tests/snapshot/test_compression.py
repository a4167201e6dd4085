"""Layer stream compression: detection by magic, multi-member gzip, level checks."""

from __future__ import annotations

import gzip
import io
import zlib

import pytest
import zstandard

from buildkit_py.snapshot import Compression, LayerReader, LayerWriter, deflate


def test_reader_detects_each_compression_and_hashes_both_sides() -> None:
    payload = b"tar bytes " * 50_000
    for compression in Compression:
        out = io.BytesIO()
        w = LayerWriter(out, compression)
        w.write(payload[:7])
        w.write(payload[7:])
        desc = w.close()
        r = LayerReader(io.BytesIO(out.getvalue()))
        assert r.compression is compression
        parts = []
        while chunk := r.read(4096):
            parts.append(chunk)
        got = b"".join(parts)
        assert got == payload
        assert (r.diff_id, r.raw_digest, r.raw_size) == (desc.diff_id, desc.digest, desc.size)
        assert desc.uncompressed_size == len(payload)


def test_concatenated_gzip_members_and_zstd_frames_are_read_fully() -> None:
    r = LayerReader(io.BytesIO(gzip.compress(b"abc") + gzip.compress(b"def")))
    assert r.read() == b"abcdef"
    frames = zstandard.ZstdCompressor().compress(b"ab") + zstandard.ZstdCompressor().compress(b"c")
    assert LayerReader(io.BytesIO(frames)).read() == b"abc"


def test_truncated_gzip_is_an_error() -> None:
    data = gzip.compress(b"x" * 100_000)
    with pytest.raises(EOFError):
        LayerReader(io.BytesIO(data[: len(data) // 2])).read()


def test_corrupt_gzip_is_a_zlib_error_whatever_the_engine() -> None:
    data = bytearray(gzip.compress(bytes(range(256)) * 4000))
    data[len(data) // 2] ^= 0xFF
    data[len(data) // 2 + 1] ^= 0xFF
    with pytest.raises(zlib.error):
        LayerReader(io.BytesIO(bytes(data))).read()


def test_gunzip_runs_on_the_fast_engine_when_installed() -> None:
    from isal import isal_zlib  # a dependency of the project

    assert deflate._inflate_engine()[0] is isal_zlib.decompressobj


def test_levels_are_checked() -> None:
    with pytest.raises(ValueError, match="gzip"):
        LayerWriter(io.BytesIO(), Compression.GZIP, level=12)
    with pytest.raises(ValueError, match="zstd"):
        LayerWriter(io.BytesIO(), Compression.ZSTD, level=30)
