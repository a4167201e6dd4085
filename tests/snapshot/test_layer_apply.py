"""Applying layer tars: round trips, whiteouts, opaque dirs, overlay-upper mode."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import tarfile
from pathlib import Path

import pytest

from buildkit_py.snapshot import (
    Compression,
    LayerError,
    OverlaySnapshotter,
    apply_layer,
    mounted,
)
from tests.snapshot.conftest import CAP_NET_BIND, T0, T1, set_times, tree_state

pytestmark = pytest.mark.root


def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in members:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes = b"", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = mode
    ti.mtime = T0
    return ti, data


def _dir(name: str) -> tuple[tarfile.TarInfo, None]:
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.DIRTYPE
    ti.mode = 0o755
    ti.mtime = T0
    return ti, None


def _build_layers(s: OverlaySnapshotter) -> None:
    with mounted(s.prepare("a")) as r:
        (r / "bin").mkdir()
        (r / "bin/app").write_bytes(b"app-v1")
        os.link(r / "bin/app", r / "bin/app-hard")
        os.symlink("app", r / "bin/app-soft")
        os.symlink("/bin/app", r / "bin/app-abs")
        (r / "etc/conf.d").mkdir(parents=True)
        (r / "etc/conf.d/one").write_text("1")
        (r / "etc/conf.d/two").write_text("2")
        (r / "etc/gone").write_text("bye")
        (r / "ping").write_bytes(b"\x7fELF")
        os.setxattr(r / "ping", "security.capability", CAP_NET_BIND)
        os.chown(r / "etc/conf.d/one", 33, 33)
        os.chmod(r / "bin", 0o750)
        os.mkfifo(r / "fifo")
        os.mknod(r / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        set_times(r, T0)
    s.commit("A", "a")
    with mounted(s.prepare("b", "A")) as r:
        (r / "etc/gone").unlink()
        shutil.rmtree(r / "etc/conf.d")
        (r / "etc/conf.d").mkdir()
        (r / "etc/conf.d/three").write_text("3")
        (r / "bin/app").write_bytes(b"app-v2")
        (r / "new-link").symlink_to("etc/conf.d/three")
        set_times(r, T1)
    s.commit("B", "b")


def test_diff_then_apply_to_plain_dir_reproduces_the_merged_tree(
    overlay: OverlaySnapshotter, tmp_path: Path
) -> None:
    _build_layers(overlay)
    target = tmp_path / "rootfs"
    target.mkdir()
    for key in ("A", "B"):
        blob = io.BytesIO()
        desc = overlay.export_layer(key, blob, compression=Compression.GZIP)
        blob.seek(0)
        res = apply_layer(blob, target)
        assert (res.diff_id, res.digest, res.size) == (desc.diff_id, desc.digest, desc.size)
        assert res.compression is Compression.GZIP
        if key == "A":
            assert os.stat(target / "bin/app").st_ino == os.stat(target / "bin/app-hard").st_ino
    with mounted(overlay.view("v", "B")) as merged:
        expected = tree_state(merged)
    assert tree_state(target) == expected
    # overlay (index=off) breaks the link on copy-up, as docker/BuildKit do
    assert (target / "bin/app-hard").read_bytes() == b"app-v1"
    assert os.readlink(target / "bin/app-abs") == "/bin/app"
    assert os.getxattr(target / "ping", "security.capability") == CAP_NET_BIND
    assert os.stat(target / "etc").st_mtime == T1
    assert sorted(os.listdir(target / "etc/conf.d")) == ["three"]
    assert stat.S_ISCHR(os.lstat(target / "null").st_mode)


def test_apply_into_overlay_upper_writes_overlay_markers(
    overlay: OverlaySnapshotter, tmp_path: Path
) -> None:
    _build_layers(overlay)
    blobs = {}
    for key in ("A", "B"):
        out = io.BytesIO()
        overlay.export_layer(key, out, compression=Compression.ZSTD)
        blobs[key] = out.getvalue()
    # Unpack like an image pull: each layer into its own snapshot.
    pulled = OverlaySnapshotter(tmp_path / "pulled")
    pulled.prepare("ua")
    pulled.apply_layer("ua", io.BytesIO(blobs["A"]))
    pulled.commit("PA", "ua")
    pulled.prepare("ub", "PA")
    pulled.apply_layer("ub", io.BytesIO(blobs["B"]))
    upper = pulled._fs(pulled._db.get("ub").id)
    gone = os.lstat(upper / "etc/gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0
    # the recreated (opaque) dir was exported as whiteouts of its old entries, as BuildKit does
    one = os.lstat(upper / "etc/conf.d/one")
    assert stat.S_ISCHR(one.st_mode) and one.st_rdev == 0
    lower = pulled._fs(pulled._db.get("PA").id)
    assert (lower / "etc/gone").read_text() == "bye"  # lower layers stay untouched
    pulled.commit("PB", "ub")
    with mounted(pulled.view("pv", "PB")) as got, mounted(overlay.view("ov", "B")) as want:
        assert tree_state(got) == tree_state(want)
    # and exporting the pulled snapshot gives the same layer again
    again = io.BytesIO()
    pulled.export_layer("PB", again, compression=Compression.ZSTD)
    assert again.getvalue() == blobs["B"]
    pulled.close()


def test_opaque_marker_after_entries_keeps_this_layers_entries(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d/lower").write_text("lower")
    marker = tarfile.TarInfo("d/.wh..wh..opq")
    marker.mtime = T0
    layer = _tar(_dir("d"), _file("d/mine", b"mine"), (marker, b""))
    apply_layer(io.BytesIO(gzip.compress(layer)), root)
    assert os.listdir(root / "d") == ["mine"]


def test_entry_replaces_existing_path_of_another_type(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "was-dir/sub").mkdir(parents=True)
    (root / "was-file").write_text("x")
    (root / "keep-dir").mkdir()
    (root / "keep-dir/child").write_text("c")
    layer = _tar(_file("was-dir", b"now a file"), _dir("was-file"), _dir("keep-dir"))
    apply_layer(io.BytesIO(layer), root)
    assert (root / "was-dir").read_bytes() == b"now a file"
    assert (root / "was-file").is_dir()
    assert (root / "keep-dir/child").read_text() == "c"  # dir over dir: attributes only
    assert os.stat(root / "keep-dir").st_mtime == T0


def test_malformed_layers_raise_layer_error(tmp_path: Path) -> None:
    with pytest.raises(LayerError):
        apply_layer(io.BytesIO(gzip.compress(b"not a tar" * 100)[:-10]), tmp_path)
    with pytest.raises(LayerError):
        apply_layer(io.BytesIO(b"\x28\xb5\x2f\xfd" + b"garbage" * 10), tmp_path)
    ti, _ = _file("link")
    ti.type = tarfile.LNKTYPE
    ti.linkname = "missing"
    with pytest.raises(LayerError, match="hardlink target"):
        apply_layer(io.BytesIO(_tar((ti, None))), tmp_path)
