"""Mount helpers: cleanup on errors, read-only binds, long overlay option strings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from buildkit_py.snapshot import Mount, MountError, mount_all, mounted, unmount

pytestmark = pytest.mark.root


def _is_mountpoint(p: Path) -> bool:
    # os.path.ismount misses binds within one filesystem; mountinfo does not.
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == str(p) for line in f)


def test_mounted_unmounts_and_removes_target_on_exception(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    seen: list[Path] = []
    with pytest.raises(RuntimeError), mounted([Mount("bind", str(src), ("rbind", "ro"))]) as t:
        seen.append(t)
        assert _is_mountpoint(t)
        raise RuntimeError("boom")
    assert not seen[0].exists()


def test_readonly_bind_rejects_writes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with mounted([Mount("bind", str(src), ("rbind", "ro"))], parent=tmp_path) as t:
        with pytest.raises(OSError):
            (t / "x").write_text("x")
    with mounted([Mount("bind", str(src), ("rbind", "rw"))], parent=tmp_path) as t:
        (t / "x").write_text("x")
    assert (src / "x").read_text() == "x"


def test_overlay_options_longer_than_a_page_are_shortened(tmp_path: Path) -> None:
    deep = tmp_path / ("long-directory-name-" * 8)
    layers = []
    for i in range(40):
        d = deep / f"layer{i:03d}"
        d.mkdir(parents=True)
        (d / f"f{i}").write_text(str(i))
        layers.append(str(d))
    upper, work = deep / "upper", deep / "work"
    upper.mkdir()
    work.mkdir()
    m = Mount(
        "overlay",
        "overlay",
        (f"lowerdir={':'.join(reversed(layers))}", f"upperdir={upper}", f"workdir={work}"),
    )
    assert len(",".join(m.options)) > os.sysconf("SC_PAGE_SIZE")
    cwd = os.getcwd()
    with mounted([m], parent=tmp_path) as t:
        assert len(os.listdir(t)) == 40
        (t / "new").write_text("n")
    assert os.getcwd() == cwd  # the caller's working directory is untouched
    assert (upper / "new").read_text() == "n"


def test_mount_failure_is_a_mount_error(tmp_path: Path) -> None:
    target = tmp_path / "t"
    target.mkdir()
    with pytest.raises(MountError, match="overlay"):
        mount_all([Mount("overlay", "overlay", (f"lowerdir={tmp_path}/missing",))], target)
    assert not _is_mountpoint(target)
    with pytest.raises(MountError):
        unmount(target)
