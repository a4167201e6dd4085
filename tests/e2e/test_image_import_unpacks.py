"""`bkpy image import` extracts the host platform's layers as `docker load` does, so the
first build FROM the image does not pay for unpacking it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.e2e.conftest import make_runner
from tests.images import write_busybox_layout


def _snapshots(state: Path) -> list[tuple[str, int]]:
    """The unpacked image layers: (key, record id)."""
    [db] = (state / "worker" / "snapshots").glob("*/metadata.db")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [(k, int(i)) for (k, i) in
                conn.execute("SELECT key, id FROM snapshots WHERE key LIKE 'img-%'")]
    finally:
        conn.close()


def test_import_unpacks_the_host_variant_and_from_reuses_it(tmp_path: Path) -> None:
    layout = write_busybox_layout(tmp_path / "layout", ("amd64", "arm64"))
    state = tmp_path / "state"
    bkpy = make_runner(state)
    bkpy("image", "import", str(layout), "busybox:latest")
    unpacked = _snapshots(state)
    assert len(unpacked) == 1  # the amd64 variant's single layer, not arm64's
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo hi > /hi\n")
    bkpy("build", "--network", "none", "-o", f"type=local,dest={tmp_path / 'out'}", str(ctx))
    assert (tmp_path / "out" / "hi").read_text() == "hi\n"
    assert _snapshots(state) == unpacked  # the build used the import's layer as it was

