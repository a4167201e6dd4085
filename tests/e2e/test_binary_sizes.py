"""Sizes read as buildx and BuildKit read them, binary: ``prune --keep-storage 4.8MB`` keeps
4.8 MiB (5.03 MB), as docker's MemBytes does, not 4.8 million bytes."""

from __future__ import annotations

import re
from pathlib import Path

from tests.e2e.conftest import Bkpy


def _cache_total(du: str) -> int:
    """The cache records' bytes in ``du --verbose`` (the content store is not cache)."""
    total = 0
    for block in du.split("\n\n"):
        if re.search(r"^Type:\s+regular$", block, re.M):
            m = re.search(r"^Size:\s+([\d.]+)(kB|MB|B)$", block, re.M)
            assert m, block
            total += int(float(m.group(1)) * {"B": 1, "kB": 1e3, "MB": 1e6}[m.group(2)])
    return total


def test_keep_storage_is_binary(fresh_bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN head -c 2900000 /dev/zero > /f\n")
    fresh_bkpy("build", "--progress", "quiet", str(ctx))
    # ~4.93 MB: above 4.8 million bytes, below 4.8 MiB (5,033,164 bytes)
    assert 4_800_000 < _cache_total(fresh_bkpy("du", "--verbose").out) < 5_033_164
    pruned = fresh_bkpy("prune", "-f", "--keep-storage", "4.8MB", "--verbose")
    assert pruned.out.strip().splitlines()[-1] == "Total:\t0B", pruned.out
    # and 4.8 million bytes would not have kept it all
    pruned = fresh_bkpy("prune", "-f", "--keep-storage", "4800000", "--verbose")
    assert "Total:\t2.023MB" in pruned.out, pruned.out  # the least recently used record
