"""`COPY --from=stage` through `bkpy build`: a no-op rebuild takes the copy's content key
from the selection memo without mounting the stage, yet a changed, rebuilt or pruned and
re-run stage is checksummed again."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.e2e.conftest import Bkpy

DOCKERFILE = """\
FROM busybox:latest AS gen
ARG V=1
RUN echo "$V" > /v && cat /proc/sys/kernel/random/uuid > /r
FROM busybox:latest AS other
RUN echo other > /o
FROM scratch
COPY --from=gen /v /r /out/
COPY --from=other /o /out/
"""


def _context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    return ctx


def _snapshots_created(state: Path) -> int:
    """How many snapshot records (views and layers) were ever made under ``state``."""
    [db] = (state / "worker" / "snapshots").glob("*/metadata.db")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='snapshots'").fetchone()
    finally:
        conn.close()
    return int(row[0])


def _export(run: Bkpy, ctx: Path, dest: Path, *args: str) -> dict[str, str]:
    run("build", "--network", "none", *args, "-o", f"type=local,dest={dest}", str(ctx))
    return {p.name: p.read_text() for p in (dest / "out").iterdir()}


def test_noop_rebuild_with_copy_from_mounts_no_snapshot(
        fresh_bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    state = tmp_path / "state"
    build = ("build", "--progress", "plain", "--network", "none", "-t", "memo:test", str(ctx))
    fresh_bkpy(*build)
    before = _snapshots_created(state)
    again = fresh_bkpy(*build)
    assert _snapshots_created(state) == before
    assert again.err.count("CACHED") >= 4  # both stages' RUNs and both copies


def test_changed_upstream_stage_invalidates_the_copy(fresh_bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    one = _export(fresh_bkpy, ctx, tmp_path / "one", "--build-arg", "V=1")
    two = _export(fresh_bkpy, ctx, tmp_path / "two", "--build-arg", "V=2")
    assert (one["v"], two["v"]) == ("1\n", "2\n")
    assert one["r"] != two["r"] and two["o"] == "other\n"
    back = _export(fresh_bkpy, ctx, tmp_path / "back", "--build-arg", "V=1")
    assert back == one  # the first build's layers are still cached


def test_rerun_of_a_nondeterministic_stage_reaches_the_copy(
        fresh_bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    first = _export(fresh_bkpy, ctx, tmp_path / "first")
    # the stage runs again while the copy's old result stays cached: the new content
    # must change the copy's key
    rerun = _export(fresh_bkpy, ctx, tmp_path / "rerun", "--no-cache-filter", "gen")
    assert rerun["r"] != first["r"]

    fresh_bkpy("prune", "--all", "-f")
    pruned = _export(fresh_bkpy, ctx, tmp_path / "pruned")
    assert pruned["r"] not in (first["r"], rerun["r"])
    assert pruned["v"] == "1\n" and pruned["o"] == "other\n"


MOUNT_DOCKERFILE = """\
FROM busybox:latest AS gen
ARG V=1
RUN echo "$V" > /v
FROM busybox:latest
RUN --mount=type=bind,from=gen,source=/v,target=/in/v cp /in/v /got
"""


def test_noop_rebuild_with_a_read_only_mount_from_a_stage_mounts_no_snapshot(
        fresh_bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = tmp_path / "mctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(MOUNT_DOCKERFILE)
    state = tmp_path / "state"
    build = ("build", "--progress", "plain", "--network", "none", str(ctx))
    fresh_bkpy(*build)
    before = _snapshots_created(state)
    again = fresh_bkpy(*build)
    assert _snapshots_created(state) == before
    assert again.err.count("CACHED") >= 2
    got = tmp_path / "got"
    fresh_bkpy("build", "--network", "none", "--build-arg", "V=2", "-o",
               f"type=local,dest={got}", str(ctx))
    assert (got / "got").read_text() == "2\n"  # a changed stage still reaches the RUN
