"""Layer apply writes files on helper threads: the result must still be that of
applying the entries one by one, in order."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from buildkit_py.snapshot import LayerError, UnsafeLayerError, apply_layer
from tests.snapshot.conftest import T0

pytestmark = pytest.mark.root


def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in members:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes = b"", mode: int = 0o644,
          uid: int = 0) -> tuple[tarfile.TarInfo, bytes]:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = mode
    ti.uid = ti.gid = uid
    ti.mtime = T0
    return ti, data


def _special(name: str, kind: bytes, link: str = "") -> tuple[tarfile.TarInfo, None]:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = link
    ti.mode = 0o755
    ti.mtime = T0
    return ti, None


def test_same_name_twice_keeps_the_later_entry(tmp_path: Path) -> None:
    apply_layer(io.BytesIO(_tar(_file("a", b"first"), _file("a", b"second", 0o600))), tmp_path)
    assert (tmp_path / "a").read_bytes() == b"second"
    assert stat.S_IMODE(os.stat(tmp_path / "a").st_mode) == 0o600


def test_file_replaced_by_directory_then_filled(tmp_path: Path) -> None:
    layer = _tar(_file("a", b"file"), _special("a", tarfile.DIRTYPE), _file("a/x", b"x"))
    apply_layer(io.BytesIO(layer), tmp_path)
    assert (tmp_path / "a").is_dir()
    assert (tmp_path / "a/x").read_bytes() == b"x"


def test_file_as_parent_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="not a directory"):
        apply_layer(io.BytesIO(_tar(_file("a", b"file"), _file("a/x", b"x"))), tmp_path)


def test_hardlink_to_a_file_of_the_same_layer(tmp_path: Path) -> None:
    layer = _tar(_file("f", b"body", 0o751), _special("h", tarfile.LNKTYPE, "f"))
    apply_layer(io.BytesIO(layer), tmp_path)
    assert os.stat(tmp_path / "h").st_ino == os.stat(tmp_path / "f").st_ino
    assert (tmp_path / "h").read_bytes() == b"body"


def test_symlinked_parent_written_through_and_escape_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    layer = _tar(_special("d", tarfile.DIRTYPE), _special("l", tarfile.SYMTYPE, "d"),
                 _file("l/x", b"via link"))
    apply_layer(io.BytesIO(layer), root)
    assert (root / "d/x").read_bytes() == b"via link"
    bad = _tar(_file("f", b"x"), _special("esc", tarfile.SYMTYPE, "../.."),
               _file("esc/pwned", b"x"))
    (tmp_path / "other").mkdir()
    with pytest.raises(UnsafeLayerError):
        apply_layer(io.BytesIO(bad), tmp_path / "other")
    assert not (tmp_path / "pwned").exists()


def test_many_files_and_a_big_one_keep_content_and_attributes(tmp_path: Path) -> None:
    members = [_file(f"d{i % 7}/f{i}", os.urandom(i % 3000), 0o640 + i % 8, uid=i % 3)
               for i in range(600)]
    big = os.urandom(3 << 20)
    members.append(_file("big", big, 0o4755))
    dirs = [_special(f"d{i}", tarfile.DIRTYPE) for i in range(7)]
    blob = gzip.compress(_tar(*dirs, *members), compresslevel=1)
    apply_layer(io.BytesIO(blob), tmp_path)
    for ti, data in members:
        path = tmp_path / ti.name
        st = os.lstat(path)
        assert path.read_bytes() == data
        assert stat.S_IMODE(st.st_mode) == ti.mode
        assert (st.st_uid, st.st_mtime) == (ti.uid, T0)
    assert os.stat(tmp_path / "d0").st_mtime == T0  # dir times set after their files


def test_truncated_layer_raises_layer_error(tmp_path: Path) -> None:
    (tmp_path / "gz").mkdir()
    (tmp_path / "plain").mkdir()
    layer = _tar(_file("a", os.urandom(5000)), _file("b", os.urandom(5000)))
    with pytest.raises(LayerError):
        apply_layer(io.BytesIO(gzip.compress(layer)[:7000]), tmp_path / "gz")
    with pytest.raises(LayerError, match="truncated"):
        apply_layer(io.BytesIO(layer[:7000]), tmp_path / "plain")
