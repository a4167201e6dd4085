"""prepare / view / commit / remove semantics and mount shapes, on both snapshotters."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildkit_py.snapshot import (
    CopySnapshotter,
    DBSnapshotter,
    Kind,
    OverlaySnapshotter,
    SnapshotError,
    SnapshotExistsError,
    SnapshotNotFoundError,
    SnapshotStateError,
    mounted,
)

pytestmark = pytest.mark.root


@pytest.fixture(params=["overlay", "native"])
def snap(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DBSnapshotter]:
    cls: type[DBSnapshotter] = OverlaySnapshotter if request.param == "overlay" else CopySnapshotter
    s = cls(tmp_path / request.param)
    yield s
    s.close()


def test_base_snapshot_is_a_plain_bind_and_commit_keeps_contents(snap: DBSnapshotter) -> None:
    mounts = snap.prepare("base-active")
    assert [m.type for m in mounts] == ["bind"]
    with mounted(mounts) as root:
        (root / "hello").write_text("hi")
    snap.commit("base", "base-active")
    info = snap.stat("base")
    assert info.kind is Kind.COMMITTED and info.parent is None
    with pytest.raises(SnapshotNotFoundError):
        snap.stat("base-active")
    with mounted(snap.view("v", "base")) as root:
        assert (root / "hello").read_text() == "hi"
        with pytest.raises(OSError):
            (root / "other").write_text("x")
    assert snap.usage("base").inodes >= 1


def test_child_sees_parent_and_writes_stay_in_child(snap: DBSnapshotter) -> None:
    with mounted(snap.prepare("a")) as root:
        (root / "f").write_text("parent")
    snap.commit("A", "a")
    with mounted(snap.prepare("b", "A")) as root:
        assert (root / "f").read_text() == "parent"
        (root / "f").write_text("child")
        (root / "g").write_text("new")
    snap.commit("B", "b", labels={"x": "1"})
    with mounted(snap.view("va", "A")) as root:
        assert (root / "f").read_text() == "parent"
        assert not (root / "g").exists()
    with mounted(snap.view("vb", "B")) as root:
        assert (root / "f").read_text() == "child"
    assert snap.stat("B").parent == "A"
    assert snap.stat("B").labels == {"x": "1"}
    assert {i.key for i in snap.walk()} == {"A", "B", "va", "vb"}


def test_state_errors(snap: DBSnapshotter) -> None:
    snap.prepare("a")
    with pytest.raises(SnapshotExistsError):
        snap.prepare("a")
    with pytest.raises(SnapshotError, match="only committed"):
        snap.prepare("b", "a")
    with pytest.raises(SnapshotNotFoundError):
        snap.prepare("c", "missing")
    snap.commit("A", "a")
    with pytest.raises(SnapshotStateError):
        snap.commit("A2", "A")
    with pytest.raises(SnapshotStateError):
        snap.mounts("A")
    snap.view("v", "A")
    with pytest.raises(SnapshotStateError):
        snap.commit("V", "v")
    with pytest.raises(SnapshotError, match="depends on it"):
        snap.remove("A")
    snap.remove("v")
    snap.remove("A")
    assert list(snap.walk()) == []
    assert os.listdir(snap.snapshots_dir) == []


def test_records_survive_reopen_and_orphan_dirs_are_cleaned(
    snap: DBSnapshotter, tmp_path: Path
) -> None:
    with mounted(snap.prepare("a")) as root:
        (root / "f").write_text("x")
    snap.commit("A", "a")
    (snap.snapshots_dir / "999").mkdir()  # debris of a crashed prepare
    snap.close()
    again = type(snap)(snap.root)
    try:
        assert [i.key for i in again.walk()] == ["A"]
        assert not (again.snapshots_dir / "999").exists()
        with mounted(again.view("v", "A")) as root:
            assert (root / "f").read_text() == "x"
    finally:
        again.close()


def test_overlay_active_mount_uses_parent_chain_top_first(overlay: OverlaySnapshotter) -> None:
    overlay.prepare("a")
    overlay.commit("A", "a")
    overlay.prepare("b", "A")
    overlay.commit("B", "b")
    (m,) = overlay.prepare("c", "B")
    assert m.type == "overlay"
    lower = m.option("lowerdir")
    assert lower is not None
    assert lower.split(":") == overlay.lower_dirs("c")
    assert lower.split(":")[0].endswith("/2/fs") and lower.split(":")[1].endswith("/1/fs")
    assert m.option("upperdir") is not None and m.option("workdir") is not None
    # a view of one layer is a read-only bind of that layer
    (v,) = overlay.view("v", "A")
    assert v.type == "bind" and v.readonly


def test_overlay_chain_of_150_layers_mounts(overlay: OverlaySnapshotter) -> None:
    parent = None
    for i in range(150):
        key = f"layer-{i}"
        overlay.prepare(f"{key}-a", parent)
        # An unmounted upper dir is just a directory: write the layer directly.
        fs = overlay._fs(overlay._db.get(f"{key}-a").id)
        (fs / f"f{i}").write_text(str(i))
        (fs / "top").write_text(str(i))
        overlay.commit(key, f"{key}-a")
        parent = key
    mounts = overlay.prepare("work", parent)
    opts = ",".join(mounts[0].options)
    # Absolute paths do not fit one page: mount_all must shorten them.
    assert len(opts) > os.sysconf("SC_PAGE_SIZE")
    with mounted(mounts) as root:
        assert (root / "top").read_text() == "149"
        assert (root / "f0").read_text() == "0" and (root / "f149").read_text() == "149"
        assert len(os.listdir(root)) == 151
        (root / "written").write_text("w")
    with mounted(overlay.view("deep-view", parent)) as root:
        assert len(os.listdir(root)) == 151
    assert [e.path for e in overlay.changes("work")] == ["written"]
