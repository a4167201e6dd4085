"""A command closes every database of the state root it opened: no write-ahead log is left
behind for the next process to replay before its first query (the solver's cache database
was left open, and its log grew to megabytes across builds)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Bkpy


def test_a_build_leaves_no_database_log_behind(fresh_bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo hi > /x\nCOPY Dockerfile /d\n")
    fresh_bkpy("build", "-t", "closed", "--load", str(ctx))
    root = tmp_path / "state"
    assert (root / "solver" / "cache.db").is_file()
    left = sorted(str(p.relative_to(root)) for p in root.rglob("*.db-wal"))
    assert left == []
