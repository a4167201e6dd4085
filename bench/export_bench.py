"""Layer export speed: snapshot -> layer blob in the content store, as ``--load`` does.

Two overlay upper dirs: the context20k tree (20,000 files / 200 MB in 200 directories,
the benchmark harness's generator) and a few 100 MB files. Each is exported into a
``ContentStore`` writer (the exporter's path: blob hashed, written, fsynced, published)
uncompressed, and optionally as gzip / zstd. Medians of ``--runs`` runs, page cache warm.

Run as root:  python3 bench/export_bench.py [--runs 3] [--big 3] [--compressed]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness.contexts import context20k
from buildkit_py.content import ContentStore
from buildkit_py.snapshot import Compression, OverlaySnapshotter

_MB = 1024 * 1024


def _big_files(root: Path, count: int) -> None:
    rnd = os.urandom(_MB)
    text = (b"benchmark layer: this line compresses well, again and again\n" * 20000)[:_MB]
    for i in range(count):
        with open(root / f"big{i}.bin", "wb") as f:
            for j in range(100):
                f.write(rnd[j:] + rnd[:j] if i % 2 == 0 else text)


def _export(snap: OverlaySnapshotter, key: str, store: ContentStore,
            compression: Compression) -> tuple[float, float, int, str]:
    """(seconds to write the blob, seconds including the store's commit (fsync), ...)"""
    start = time.perf_counter()
    with store.writer() as w:
        desc = snap.export_layer(key, w, compression=compression)
        written = time.perf_counter() - start
    elapsed = time.perf_counter() - start
    store.delete(desc.digest)
    return written, elapsed, desc.uncompressed_size, desc.digest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3, help="runs per cell (median shown)")
    ap.add_argument("--files", type=int, default=20_000, help="files in the context tree")
    ap.add_argument("--big", type=int, default=3, help="number of 100 MB files")
    ap.add_argument("--compressed", action="store_true", help="also gzip and zstd")
    ap.add_argument("--dir", default="/var/tmp", help="scratch directory")
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bkpy-export-bench-", dir=args.dir))
    try:
        snap = OverlaySnapshotter(scratch / "snapshots")
        store = ContentStore(scratch / "content")
        snap.prepare("tree")
        context20k(snap._fs(snap._db.get("tree").id), files=args.files)
        snap.prepare("big")
        _big_files(snap._fs(snap._db.get("big").id), args.big)
        os.sync()
        comps = [Compression.UNCOMPRESSED]
        if args.compressed:
            comps += [Compression.GZIP, Compression.ZSTD]
        print(f"cores={os.cpu_count()} runs={args.runs}")
        for key, label in (("tree", f"{args.files} files"), ("big", f"{args.big}x100MB")):
            for comp in comps:
                _export(snap, key, store, comp)  # warm the page cache and imports
                times = []
                written = []
                for _ in range(args.runs):
                    w, elapsed, usize, digest = _export(snap, key, store, comp)
                    times.append(elapsed)
                    written.append(w)
                med = statistics.median(times)
                print(f"{label:>12} {comp.value:>12}: median {med:6.3f} s "
                      f"({usize / 1e6 / med:7.1f} MB/s), before commit "
                      f"{statistics.median(written):6.3f} s; runs "
                      f"{' '.join(f'{t:.3f}' for t in times)}  {digest[:19]}")
        store.close()
        snap.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
