"""Writable overlay layers are mounted "volatile" (no syncfs of the whole disk on unmount),
and mount points are reused: neither changes what a layer holds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from buildkit_py.snapshot import OverlaySnapshotter, mounted
from buildkit_py.snapshot.mount import MountPoints
from buildkit_py.snapshot.overlay import _kernel_at_least

from .conftest import layer_bytes


def _options(target: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == str(target):
                return line.split(" - ", 1)[1].split()[2].split(",")
    raise AssertionError(f"{target} is not mounted")


def test_writable_layers_are_volatile_where_supported_and_commit_the_same_diff(
        overlay: OverlaySnapshotter) -> None:
    volatile = _kernel_at_least(5, 10)  # older kernels refuse the option: plain mounts
    overlay.prepare("base-a")
    overlay._fs(overlay._db.get("base-a").id).joinpath("etc").mkdir()
    overlay.commit("base", "base-a")
    for step in range(3):  # each layer is a lower of the next: committed layers stay usable
        parent = "base" if step == 0 else f"l{step - 1}"
        (m,) = overlay.prepare(f"a{step}", parent)
        assert ("volatile" in m.options) is volatile
        with mounted([m]) as root:
            # newer kernels show it as fsync=volatile
            assert bool({"volatile", "fsync=volatile"} & set(_options(root))) is volatile
            (root / "etc" / f"f{step}").write_text(str(step))
        overlay.commit(f"l{step}", f"a{step}")
        assert [e.path for e in overlay.changes(f"l{step}")] == ["etc", f"etc/f{step}"]
    data = layer_bytes(overlay, "l2")
    assert b"etc/f2" in data and b"incompat" not in data and b"volatile" not in data
    (view,) = overlay.view("v", "l2")
    assert "volatile" not in view.options
    with mounted([view]) as root:
        assert sorted(os.listdir(root / "etc")) == ["f0", "f1", "f2"]


def test_mount_points_are_reused_once_unmounted(overlay: OverlaySnapshotter,
                                                 tmp_path: Path) -> None:
    points = MountPoints(tmp_path / "mnt")
    (tmp_path / "mnt").mkdir()
    overlay.prepare("a")
    overlay.commit("A", "a")
    with mounted(overlay.view("v1", "A"), points) as first:
        pass
    assert first.is_dir() and not os.listdir(first)
    with mounted(overlay.view("v2", "A"), points) as second:
        assert second == first and _options(second)
    with pytest.raises(RuntimeError), mounted(overlay.view("v3", "A"), points) as third:
        raise RuntimeError("a failed step")
    assert not third.exists()  # not handed out again after a failure
