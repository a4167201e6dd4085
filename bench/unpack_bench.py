"""Layer unpack (``apply_layer``) speed on a toolchain-like layer: ~1,400 files in
~120 directories, ~14 MB of content (a few big binaries, many small headers), some
symlinks and hardlinks; applied as gzip and as plain tar onto an empty directory
(what the first ``FROM`` layer does) and as an overlay upper over a lower layer.

Run as root:  python3 bench/unpack_bench.py [--files 1400] [--mb 14] [--runs 5]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

from buildkit_py.snapshot import Compression, apply_layer
from buildkit_py.snapshot.compression import LayerWriter


def _content(rng: random.Random, size: int) -> bytes:
    """Compressible like code: random words from a small vocabulary plus noise."""
    words = [rng.randbytes(rng.randint(2, 9)) for _ in range(400)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words)
        if rng.random() < 0.05:
            out += rng.randbytes(16)
    return bytes(out[:size])


def make_layer(files: int, total_mb: int, seed: int = 1) -> bytes:
    """An uncompressed layer tar with the shape described in the module docstring."""
    rng = random.Random(seed)
    total = total_mb * 1024 * 1024
    big_n = 8
    big_total = total // 2
    small_n = files - big_n
    small_size = (total - big_total) // max(small_n, 1)
    dirs = ["usr", "usr/bin", "usr/lib", "usr/include"]
    dirs += [f"usr/include/pkg{i}" for i in range(60)]
    dirs += [f"usr/lib/mod{i}" for i in range(56)]
    buf = io.BytesIO()
    pool = _content(rng, 1 << 20)
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in dirs:
            ti = tarfile.TarInfo(d)
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755
            ti.mtime = 1_700_000_000
            tf.addfile(ti)
        names: list[str] = []
        for i in range(big_n):
            name = f"usr/bin/tool{i}"
            data = (pool * (big_total // big_n // len(pool) + 1))[: big_total // big_n]
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o755
            ti.mtime = 1_700_000_000
            tf.addfile(ti, io.BytesIO(data))
            names.append(name)
        for i in range(small_n):
            d = dirs[4 + i % (len(dirs) - 4)]
            name = f"{d}/file{i}.h"
            size = max(1, int(rng.expovariate(1 / small_size)))
            off = rng.randrange(0, len(pool) - size) if size < len(pool) else 0
            data = pool[off: off + size]
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            ti.uid = ti.gid = 0
            ti.mtime = 1_700_000_000
            tf.addfile(ti, io.BytesIO(data))
            names.append(name)
        for i in range(20):
            ti = tarfile.TarInfo(f"usr/bin/alias{i}")
            ti.type = tarfile.SYMTYPE
            ti.linkname = f"tool{i % big_n}"
            tf.addfile(ti)
            ti = tarfile.TarInfo(f"usr/lib/hard{i}")
            ti.type = tarfile.LNKTYPE
            ti.linkname = names[big_n + i]
            tf.addfile(ti)
    return buf.getvalue()


def compress(tar: bytes, compression: Compression) -> bytes:
    out = io.BytesIO()
    w = LayerWriter(out, compression)
    w.write(tar)
    w.close()
    return out.getvalue()


def time_apply(blob: bytes, scratch: Path, runs: int, lower: Path | None) -> list[float]:
    times = []
    for i in range(runs):
        root = scratch / f"run{i}"
        root.mkdir()
        t0 = time.perf_counter()
        if lower is None:
            apply_layer(io.BytesIO(blob), root)
        else:
            apply_layer(io.BytesIO(blob), root, overlay_upper=True, lowers=[lower])
        times.append(time.perf_counter() - t0)
        shutil.rmtree(root)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=1400)
    ap.add_argument("--mb", type=int, default=14)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    tar = make_layer(args.files, args.mb)
    gz = compress(tar, Compression.GZIP)
    print(f"layer: {len(tar) / 1e6:.1f} MB tar, {len(gz) / 1e6:.1f} MB gzip, "
          f"{args.files} files")
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR", "/var/tmp")) as tmp:
        scratch = Path(tmp)
        lower = scratch / "lower"
        lower.mkdir()
        apply_layer(io.BytesIO(tar), lower)
        for label, blob, low in (("gzip  -> empty dir", gz, None),
                                 ("plain -> empty dir", tar, None),
                                 ("gzip  -> overlay upper", gz, lower)):
            ts = time_apply(blob, scratch, args.runs, low)
            print(f"{label:24s} median {statistics.median(ts) * 1000:7.1f} ms"
                  f"  (min {min(ts) * 1000:.1f}, runs {len(ts)})")


if __name__ == "__main__":
    main()
