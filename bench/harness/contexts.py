"""Build contexts, generated from fixed seeds (nothing large is committed).

Each generator fills an empty directory; the case's Dockerfile is copied in beside the
files by :func:`bench.harness.cases.prepare_context`.
"""

from __future__ import annotations

import random
from pathlib import Path

_MB = 1024 * 1024


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)


def _text(rng: random.Random, size: int) -> bytes:
    """Compressible text: lines drawn from a small vocabulary."""
    words = [b"alpha", b"build", b"cache", b"layer", b"stage", b"image", b"delta", b"vertex",
             b"digest", b"snapshot", b"context", b"export"]
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choice(words) for _ in range(10)) + b"\n"
    return bytes(out[:size])


def small(ctx: Path) -> None:
    _write(ctx / "app.sh", "#!/bin/sh\necho \"hello from the benchmark, home=$APP_HOME\"\n")
    _write(ctx / "config.txt", "greeting=hello\nlevel=1\n")


HASH_SH = """#!/bin/sh
# hash.sh DIR ROUNDS: sha256 over all of DIR's files, ROUNDS times (CPU work).
i=0
while [ "$i" -lt "$2" ]; do cat "$1"/* | sha256sum; i=$((i + 1)); done
"""


def multistage(ctx: Path) -> None:
    _write(ctx / "hash.sh", HASH_SH)
    for side, seed in (("left", 1), ("right", 2)):
        rng = random.Random(seed)
        for i in range(4):
            _write(ctx / "data" / side / f"part{i}.bin", rng.randbytes(_MB))


CONTEXT_FILES = 20_000
CONTEXT_BYTES = 200 * 1000 * 1000


def context20k(ctx: Path, files: int = CONTEXT_FILES, total: int = CONTEXT_BYTES) -> None:
    """``files`` files in 200 directories, ``total`` bytes: half random, half text."""
    rng = random.Random(20_000)
    mean = total // files
    text_pool = _text(rng, 4 * mean)
    for i in range(files):
        # Sizes spread from 20% to 180% of the mean, with the same sum as all-mean.
        size = mean // 5 + (i * 7919) % (mean * 8 // 5 + 1)
        data = rng.randbytes(size) if i % 2 else text_pool[(i * 31) % mean:][:size]
        _write(ctx / "tree" / f"d{i % 200:03d}" / f"f{i:05d}.dat", data)


GEN_SH = """set -e
# gen.sh DIR: 150 MiB from /dev/urandom and 150 MiB of repeated text.
mkdir -p "$1"
dd if=/dev/urandom of="$1/random.bin" bs=1048576 count=150 2>/dev/null
yes "benchmark layer: this line compresses well, again and again" \\
    | head -c 157286400 > "$1/text.txt"
"""


def layer300(ctx: Path) -> None:
    _write(ctx / "gen.sh", GEN_SH)
    _write(ctx / "stamp.txt", "stamp 0\n")


def bigbase(ctx: Path) -> None:
    _write(ctx / "stamp.txt", "stamp 0\n")


def chain50(ctx: Path) -> None:
    _write(ctx / "seed.txt", "seed 0\n")


_C_MODULES = 40
_C_FUNCS = 40


def cprogram(ctx: Path) -> None:
    """``_C_MODULES`` source files of ``_C_FUNCS`` functions each, and a main calling all."""
    decls = []
    calls = []
    for m in range(_C_MODULES):
        body = [f"/* module {m} */", "#include <string.h>", ""]
        for f in range(_C_FUNCS):
            name = f"m{m:02d}_f{f:02d}"
            body.append(
                f"unsigned long {name}(unsigned long x) {{\n"
                f"    unsigned long acc = {m * 131 + f}UL;\n"
                f"    for (int i = 0; i < {16 + f}; i++) {{ acc = acc * 6364136223846793005UL"
                f" + x + (unsigned long)i; acc ^= acc >> 17; }}\n"
                f"    return acc;\n}}\n")
            decls.append(f"unsigned long {name}(unsigned long x);")
            calls.append(f"    sum += {name}(sum);")
        _write(ctx / "src" / f"mod{m:02d}.c", "\n".join(body))
    main = ["#include <stdio.h>", *decls, "int main(void) {", "    unsigned long sum = 1;",
            *calls, '    printf("checksum %lu\\n", sum);', "    return 0;", "}", ""]
    _write(ctx / "src" / "main.c", "\n".join(main))


def twoplatform(ctx: Path) -> None:
    _write(ctx / "data.bin", random.Random(2).randbytes(2 * _MB))
    _write(ctx / "stamp.txt", "stamp 0\n")


def noop30(ctx: Path) -> None:
    rng = random.Random(30)
    _write(ctx / "deps" / "list.txt", "".join(f"dep-{rng.randrange(10**6)}\n" for _ in range(200)))
    for i in range(20):
        _write(ctx / "deps" / "extra" / f"extra{i:02d}.txt", _text(rng, 2000))
    for i in range(10):
        _write(ctx / "src" / f"part{i:02d}.txt", _text(rng, 5000))
    for i in range(5):
        _write(ctx / "config" / f"conf{i}.ini", f"[section{i}]\nkey={i}\n")
