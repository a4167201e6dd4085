"""The copying snapshotter: same layer content as overlay; automatic selection."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from buildkit_py.errors import UsageError
from buildkit_py.snapshot import (
    CopySnapshotter,
    DBSnapshotter,
    OverlaySnapshotter,
    apply_layer,
    factory,
    mounted,
    open_snapshotter,
)
from tests.snapshot.conftest import T0, T1, layer_bytes, set_times, tar_summary, tree_state

pytestmark = pytest.mark.root


def _base_tree(r: Path) -> None:
    (r / "etc").mkdir()
    for n in ("keep", "old", "mod"):
        (r / "etc" / n).write_text(n)
    (r / "rmdir/sub").mkdir(parents=True)
    (r / "rmdir/sub/x").write_text("x")
    (r / "cache/pkg").mkdir(parents=True)
    (r / "cache/pkg/a").write_text("a")
    os.link(r / "etc/keep", r / "etc/keep-link")
    set_times(r, T0)


def _changes(r: Path) -> None:
    (r / "etc/old").unlink()
    (r / "etc/mod").write_text("modified")
    (r / "etc/new").write_text("new")
    os.link(r / "etc/new", r / "etc/new-link")
    shutil.rmtree(r / "rmdir")
    (r / "usr/bin").mkdir(parents=True)
    (r / "usr/bin/tool").write_text("tool")
    os.symlink("../../etc/new", r / "usr/bin/cfg")
    os.chown(r / "etc/mod", 7, 8)
    for p in ("etc", "etc/mod", "etc/new", "usr", "usr/bin", "usr/bin/tool", "usr/bin/cfg", ""):
        os.utime(r / p, (T1, T1), follow_symlinks=False)


def _recreate_dir(r: Path) -> None:
    shutil.rmtree(r / "cache/pkg")
    (r / "cache/pkg").mkdir()
    (r / "cache/pkg/fresh").write_text("f")
    for p in ("cache", "cache/pkg", "cache/pkg/fresh"):
        os.utime(r / p, (T1, T1))


def _two_layers(s: DBSnapshotter, change: Callable[[Path], None]) -> None:
    with mounted(s.prepare("a")) as r:
        _base_tree(r)
    s.commit("A", "a")
    with mounted(s.prepare("b", "A")) as r:
        change(r)
    s.commit("B", "b")


def test_copy_snapshotter_gives_the_same_layer_as_overlay(
    overlay: OverlaySnapshotter, native: CopySnapshotter
) -> None:
    _two_layers(overlay, _changes)
    _two_layers(native, _changes)
    for key in ("A", "B"):
        assert tar_summary(layer_bytes(native, key)) == tar_summary(layer_bytes(overlay, key))
    assert layer_bytes(native, "B") == layer_bytes(overlay, "B")


def test_recreated_dir_applies_to_the_same_tree_from_both(
    overlay: OverlaySnapshotter, native: CopySnapshotter, tmp_path: Path
) -> None:
    _two_layers(overlay, _recreate_dir)
    _two_layers(native, _recreate_dir)
    results = []
    for s in (overlay, native):
        target = tmp_path / f"applied-{s.name}"
        target.mkdir()
        for key in ("A", "B"):
            apply_layer(io.BytesIO(layer_bytes(s, key)), target)
        results.append(tree_state(target))
    assert results[0] == results[1]
    assert "cache/pkg/a" not in results[0] and "cache/pkg/fresh" in results[0]


def test_native_active_snapshot_is_an_independent_copy(native: CopySnapshotter) -> None:
    with mounted(native.prepare("a")) as r:
        (r / "f").write_text("1")
        os.link(r / "f", r / "g")
    native.commit("A", "a")
    mounts = native.prepare("b", "A")
    with mounted(mounts) as r:
        assert os.stat(r / "f").st_ino == os.stat(r / "g").st_ino  # hardlinks copied
        (r / "f").write_text("2")
    with mounted(native.view("v", "A")) as r:
        assert (r / "f").read_text() == "1"
    assert [e.path for e in native.changes("b")] == ["f", "g"]


def test_open_snapshotter_honours_env_and_caches_probe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BKPY_SNAPSHOTTER", "native")
    s = open_snapshotter(tmp_path)
    assert isinstance(s, CopySnapshotter) and s.root == tmp_path / "native"
    s.close()
    monkeypatch.setenv("BKPY_SNAPSHOTTER", "overlayfs")
    s = open_snapshotter(tmp_path)
    assert isinstance(s, OverlaySnapshotter) and s.root == tmp_path / "overlayfs"
    s.close()
    monkeypatch.setenv("BKPY_SNAPSHOTTER", "zfs")
    with pytest.raises(UsageError, match="not a snapshotter"):
        open_snapshotter(tmp_path)
    monkeypatch.delenv("BKPY_SNAPSHOTTER")
    s = open_snapshotter(tmp_path)
    assert isinstance(s, OverlaySnapshotter)  # this host mounts overlay
    s.close()
    assert (tmp_path / "overlay-probe").read_text().endswith(" yes")
    # a cached "no" for this kernel is believed without probing again
    factory._probe_cache.clear()
    (tmp_path / "overlay-probe").write_text(f"{os.uname().release} no")
    s = open_snapshotter(tmp_path)
    assert isinstance(s, CopySnapshotter)
    s.close()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("probe-")]


def test_probe_fails_where_overlay_cannot_mount(tmp_path: Path) -> None:
    # overlayfs cannot use another overlay's merged dir as its upper layer
    s = OverlaySnapshotter(tmp_path / "s")
    s.prepare("a")
    s.commit("A", "a")
    with mounted(s.prepare("b", "A")) as merged:
        assert factory._probe_once(merged) is False
    s.close()
