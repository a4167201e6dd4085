"""Crafted layers must not write outside the target root."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from buildkit_py.errors import UserError
from buildkit_py.snapshot import OverlaySnapshotter, UnsafeLayerError, apply_layer

pytestmark = pytest.mark.root


def _tar(*members: tarfile.TarInfo) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti in members:
            tf.addfile(ti, io.BytesIO(b"pwned"[: ti.size]) if ti.isreg() else None)
    buf.seek(0)
    return buf


def _reg(name: str) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size = 5
    return ti


def _sym(name: str, target: str) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.SYMTYPE
    ti.linkname = target
    return ti


def _hard(name: str, target: str) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.LNKTYPE
    ti.linkname = target
    return ti


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """A root to apply into, inside a sandbox dir; outside/ is the victim area."""
    root = tmp_path / "a" / "b" / "root"
    root.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret")
    return root, outside


def _nothing_written_outside(tmp_path: Path, root: Path) -> None:
    for dirpath, _dirs, files in os.walk(tmp_path):
        if Path(dirpath).is_relative_to(root):
            continue
        for f in files:
            assert Path(dirpath, f).read_bytes() != b"pwned", f"{dirpath}/{f} written"


def test_dotdot_tar_slip_is_refused(layout: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = layout
    with pytest.raises(UnsafeLayerError, match="escapes the root"):
        apply_layer(_tar(_reg("../../etc/x")), root)
    with pytest.raises(UnsafeLayerError):
        apply_layer(_tar(_reg("ok/../../../outside/x")), root)
    assert not (tmp_path / "a" / "etc").exists()
    _nothing_written_outside(tmp_path, root)


def test_absolute_path_is_refused(layout: tuple[Path, Path], tmp_path: Path) -> None:
    root, outside = layout
    with pytest.raises(UnsafeLayerError, match="absolute path"):
        apply_layer(_tar(_reg(str(outside / "x"))), root)
    assert not (outside / "x").exists()
    _nothing_written_outside(tmp_path, root)


def test_symlink_to_outside_then_file_through_it_is_refused(
    layout: tuple[Path, Path], tmp_path: Path
) -> None:
    root, outside = layout
    with pytest.raises(UnsafeLayerError, match="outside the root"):
        apply_layer(_tar(_sym("evil", str(outside)), _reg("evil/x")), root)
    assert not (outside / "x").exists()
    with pytest.raises(UnsafeLayerError, match="escapes the root"):
        apply_layer(_tar(_sym("rel", "../../../outside"), _reg("rel/y")), root)
    assert not (outside / "y").exists()
    _nothing_written_outside(tmp_path, root)


def test_symlink_already_in_target_tree_is_not_followed_out(
    layout: tuple[Path, Path], tmp_path: Path
) -> None:
    root, outside = layout
    os.symlink("/tmp", root / "tmp-link")
    with pytest.raises(UnsafeLayerError):
        apply_layer(_tar(_reg("tmp-link/planted")), root)
    assert not Path("/tmp/planted").exists()
    # an entry *at* the symlink's path replaces the link instead of writing through it
    os.symlink(outside / "secret", root / "file-link")
    apply_layer(_tar(_reg("file-link")), root)
    assert (outside / "secret").read_text() == "secret"
    assert not (root / "file-link").is_symlink()
    _nothing_written_outside(tmp_path, root)


def test_hardlink_to_outside_is_refused(layout: tuple[Path, Path], tmp_path: Path) -> None:
    root, outside = layout
    with pytest.raises(UnsafeLayerError):
        apply_layer(_tar(_hard("stolen", "../../../outside/secret")), root)
    os.symlink(str(outside), root / "out")
    with pytest.raises(UnsafeLayerError):
        apply_layer(_tar(_hard("stolen2", "out/secret")), root)
    assert os.stat(outside / "secret").st_nlink == 1
    assert not (root / "stolen").exists() and not (root / "stolen2").exists()


def test_whiteout_cannot_delete_outside(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    os.symlink(str(outside), root / "out")
    with pytest.raises(UnsafeLayerError):
        apply_layer(_tar(_reg("out/.wh.secret")), root)
    with pytest.raises(UnsafeLayerError):
        apply_layer(_tar(_reg("../outside/.wh.secret")), root)
    assert (outside / "secret").exists()


def test_in_root_symlinks_are_followed_within_root(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    (root / "usr/lib").mkdir(parents=True)
    os.symlink("usr/lib", root / "lib")
    apply_layer(_tar(_reg("lib/libx.so")), root)
    assert (root / "usr/lib/libx.so").read_bytes() == b"pwned"


def test_unsafe_layer_is_a_user_error_in_overlay_upper_mode(tmp_path: Path) -> None:
    s = OverlaySnapshotter(tmp_path / "s")
    lower_active = s.prepare("a")
    assert lower_active
    base = s._fs(s._db.get("a").id)
    os.symlink("/etc", base / "etc-link")
    s.commit("A", "a")
    s.prepare("b", "A")
    with pytest.raises(UserError):
        s.apply_layer("b", _tar(_reg("etc-link/passwd-planted")))
    assert not Path("/etc/passwd-planted").exists()
    s.close()


def test_symlink_loop_in_a_parent_is_an_unsafe_layer(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    with pytest.raises(UnsafeLayerError, match="too many symlink levels"):
        apply_layer(_tar(_sym("a", "b"), _sym("b", "a"), _reg("a/x")), root)


def test_dotdot_in_an_in_root_symlink_is_followed_inside(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    (root / "usr/share").mkdir(parents=True)
    (root / "usr/local").mkdir()
    os.symlink("../share", root / "usr/local/doc")
    apply_layer(_tar(_reg("usr/local/doc/readme")), root)
    assert (root / "usr/share/readme").read_bytes() == b"pwned"
