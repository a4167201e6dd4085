"""`bkpy build` after a one-file change links the COPY's unchanged files, and the image
is the one a from-scratch build makes (same digest with rewritten timestamps)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.e2e.conftest import Bkpy, make_runner

OLD = 1_600_000_000


def _context(root: Path) -> Path:
    ctx = root / "ctx"
    for d in range(4):
        sub = ctx / "tree" / f"d{d}"
        sub.mkdir(parents=True)
        for f in range(80):
            (sub / f"f{f:02}.txt").write_text(f"{d}/{f}\n" * (f + 1))
    (ctx / "Dockerfile").write_text(
        "FROM busybox:latest\nCOPY tree/ /data/\nRUN cat /data/d0/f00.txt > /first\n")
    _age(ctx)
    return ctx


def _age(ctx: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(ctx):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (OLD, OLD))


def _build(run: Bkpy, ctx: Path, out: Path) -> tuple[str, str]:
    meta = out.with_suffix(".json")
    res = run("build", "--progress", "plain", "--build-arg", "SOURCE_DATE_EPOCH=1700000000",
              "--metadata-file", str(meta),
              "-o", f"type=oci,dest={out},rewrite-timestamp=true", str(ctx))
    return json.loads(meta.read_text())["containerimage.digest"], res.err


def test_changed_context_rebuild_links_and_matches_a_fresh_build(
        fresh_bkpy: Bkpy, busybox_layout: Path, tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    _, first_log = _build(fresh_bkpy, ctx, tmp_path / "a.tar")
    assert "linked" not in first_log
    with open(ctx / "tree" / "d0" / "f00.txt", "a") as f:
        f.write("changed\n")
    _age(ctx)

    reused, log = _build(fresh_bkpy, ctx, tmp_path / "b.tar")
    assert "copy: 320 files" in log and "319 unchanged files linked" in log

    other = make_runner(tmp_path / "other")
    other("image", "import", str(busybox_layout), "busybox:latest")
    scratch, scratch_log = _build(other, ctx, tmp_path / "c.tar")
    assert "linked" not in scratch_log
    assert reused == scratch
