"""Layer export throughput: a ~300 MB upper dir (half random, half zeros, plus
many small files) exported as gzip, zstd and uncompressed; also unpack speed, and
each deflate engine installed (zlib, zlib-ng, ISA-L) on the uncompressed tar, in the
1 MiB pigz-style blocks gzip layers use, on one thread and on every core.

Run as root (it uses a real snapshotter):  python3 bench/layer_bench.py [--mb 300]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from buildkit_py.snapshot import Compression, OverlaySnapshotter, apply_layer

_SMALL_FILES = 2000
_SMALL_SIZE = 4096


def populate(root: Path, total_mb: int) -> int:
    """Fill ``root``; returns the bytes of file content written."""
    small = _SMALL_FILES * _SMALL_SIZE
    big = total_mb * 1024 * 1024 - small
    half = big // 2
    written = 0
    rnd = root / "random"
    rnd.mkdir()
    chunk = 4 * 1024 * 1024
    for i in range(half // chunk):
        (rnd / f"blob{i:04d}").write_bytes(os.urandom(chunk))
        written += chunk
    zeros = root / "zeros"
    zeros.mkdir()
    zero_chunk = bytes(chunk)
    for i in range(half // chunk):
        (zeros / f"blob{i:04d}").write_bytes(zero_chunk)
        written += chunk
    smalls = root / "small"
    for i in range(_SMALL_FILES):
        d = smalls / f"d{i % 50:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}.txt").write_bytes((f"line {i}\n" * 600).encode()[:_SMALL_SIZE])
        written += _SMALL_SIZE
    return written


def _engines() -> dict[str, Callable[[bytes, bytes], bytes]]:
    """Raw-deflate block functions (block, zdict) -> bytes of each engine installed."""
    import zlib

    def with_zlib(mod: Any, level: int) -> Callable[[bytes, bytes], bytes]:
        def block(data: bytes, zdict: bytes) -> bytes:
            c = (mod.compressobj(level, mod.DEFLATED, -15, 9, mod.Z_DEFAULT_STRATEGY, zdict)
                 if zdict else mod.compressobj(level, mod.DEFLATED, -15, 9))
            return c.compress(data) + c.flush(mod.Z_SYNC_FLUSH)
        return block

    out = {"zlib -6": with_zlib(zlib, 6), "zlib -1": with_zlib(zlib, 1)}
    try:
        from zlib_ng import zlib_ng
        out["zlib-ng -6"] = with_zlib(zlib_ng, 6)
        out["zlib-ng -1"] = with_zlib(zlib_ng, 1)
    except ImportError:
        pass
    try:
        from isal import isal_zlib
        for lvl in (1, 2, 3):
            out[f"isal -{lvl}"] = with_zlib(isal_zlib, lvl)
    except ImportError:
        pass
    return out


def bench_engines(tar: bytes, echo: Callable[[str], None] = print) -> None:
    """Each engine on ``tar`` in 1 MiB pigz-style blocks: one thread, then all cores."""
    block = 1 << 20
    pieces = [tar[i:i + block] for i in range(0, len(tar), block)]
    dicts = [b""] + [p[-32 * 1024:] for p in pieces[:-1]]
    cores = os.cpu_count() or 1
    for name, fn in _engines().items():
        row = [f"deflate {name:>10}:"]
        for threads in (1, cores):
            start = time.perf_counter()
            with ThreadPoolExecutor(threads) as pool:
                size = sum(len(b) for b in pool.map(fn, pieces, dicts))
            elapsed = time.perf_counter() - start
            row.append(f"{threads} thread(s) {len(tar) / 1e6 / elapsed:7.1f} MB/s"
                       f" ({elapsed:5.2f} s)")
        row.append(f"blob {size / 1e6:6.1f} MB ({100 * size / len(tar):4.1f}%)")
        echo("  ".join(row))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mb", type=int, default=300, help="approximate layer size in MB")
    ap.add_argument("--dir", default=None, help="scratch directory (default: /var/tmp)")
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bkpy-layer-bench-", dir=args.dir or "/var/tmp"))
    try:
        snap = OverlaySnapshotter(scratch / "snapshots")
        snap.prepare("bench")
        fs = snap._fs(snap._db.get("bench").id)
        content = populate(fs, args.mb)
        os.sync()
        print(f"upper dir: {content / 1e6:.0f} MB of file content, "
              f"{_SMALL_FILES} small files, cores={os.cpu_count()}")
        blobs: dict[Compression, Path] = {}
        for compression in (Compression.UNCOMPRESSED, Compression.GZIP, Compression.ZSTD):
            out_path = scratch / f"layer.{compression.value}"
            start = time.perf_counter()
            with open(out_path, "wb") as out:
                desc = snap.export_layer("bench", out, compression=compression)
            elapsed = time.perf_counter() - start
            blobs[compression] = out_path
            rate = desc.uncompressed_size / 1e6 / elapsed
            print(
                f"export {compression.value:>12}: {rate:7.1f} MB/s"
                f"  ({elapsed:5.2f} s, blob {desc.size / 1e6:6.1f} MB)"
            )
        bench_engines(blobs[Compression.UNCOMPRESSED].read_bytes())
        for compression, path in blobs.items():
            target = scratch / f"unpack-{compression.value}"
            target.mkdir()
            start = time.perf_counter()
            with open(path, "rb") as f:
                res = apply_layer(f, target)
            elapsed = time.perf_counter() - start
            print(f"apply  {compression.value:>12}: {content / 1e6 / elapsed:7.1f} MB/s"
                  f"  ({elapsed:5.2f} s, diff_id {res.diff_id[:19]}...)")
            shutil.rmtree(target)
        snap.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
