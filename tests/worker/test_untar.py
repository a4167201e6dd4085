"""ADD's archive extraction: compression sniffing and moby Untar semantics."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from buildkit_py.errors import BuildError
from buildkit_py.worker import untar


def _tar(entries: list[tarfile.TarInfo], data: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti in entries:
            payload = data.get(ti.name)
            if payload is not None:
                ti.size = len(payload)
            tf.addfile(ti, io.BytesIO(payload) if payload is not None else None)
    return buf.getvalue()


def _entry(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, uid: int = 0,
           gid: int = 0, link: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.uid, ti.gid, ti.linkname = kind, mode, uid, gid, link
    ti.mtime = 1_700_000_000
    return ti


SAMPLE = _tar([_entry("d", tarfile.DIRTYPE, 0o750, 7, 8),
               _entry("d/f", mode=0o600, uid=9, gid=9),
               _entry("d/h", tarfile.LNKTYPE, link="d/f"),
               _entry("d/s", tarfile.SYMTYPE, link="/etc/passwd"),
               _entry("implied/x/y.txt", uid=3, gid=3)],
              {"d/f": b"data\n", "implied/x/y.txt": b"y\n"})

COMPRESSORS = {
    "plain": lambda raw: raw,
    "gzip": lambda raw: gzip.compress(raw),
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": lambda raw: zstandard.ZstdCompressor().compress(raw),
}


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_every_compression_is_sniffed_and_extracted(tmp_path: Path, kind: str) -> None:
    archive = tmp_path / "archive.bin"  # the name says nothing: only the bytes count
    archive.write_bytes(COMPRESSORS[kind](SAMPLE))
    root = tmp_path / "root"
    root.mkdir()
    assert untar.is_archive(str(archive))
    untar.untar(str(archive), str(root), "/out", owner=None, timestamp=None)
    assert (root / "out" / "d" / "f").read_bytes() == b"data\n"


@pytest.mark.root
def test_owners_modes_hardlinks_and_implied_dirs(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar"
    archive.write_bytes(SAMPLE)
    root = tmp_path / "root"
    root.mkdir()
    untar.untar(str(archive), str(root), "/out/", owner=None, timestamp=None)
    out = root / "out"
    st = os.stat(out / "d")
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o750, 7, 8)
    # the hardlink entry's header (0644, 0:0) applies to the shared inode
    f = os.stat(out / "d" / "f")
    assert (f.st_mode & 0o7777, f.st_uid, f.st_ino) == (0o644, 0, os.stat(out / "d" / "h").st_ino)
    assert os.readlink(out / "d" / "s") == "/etc/passwd"
    implied = os.stat(out / "implied" / "x")
    assert (implied.st_mode & 0o7777, implied.st_uid) == (0o755, 0)
    assert os.stat(out / "implied" / "x" / "y.txt").st_uid == 3


@pytest.mark.root
def test_chown_overrides_every_entry_and_the_created_dest(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar"
    archive.write_bytes(SAMPLE)
    root = tmp_path / "root"
    root.mkdir()
    untar.untar(str(archive), str(root), "/new/out", owner=(1000, 50), timestamp=None)
    for rel in ("new", "new/out", "new/out/d", "new/out/d/f"):
        st = os.lstat(root / rel)
        assert (st.st_uid, st.st_gid) == (1000, 50), rel


def test_existing_dirs_merge_and_other_paths_are_replaced(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar"
    archive.write_bytes(SAMPLE)
    root = tmp_path / "root"
    (root / "out" / "d" / "f").mkdir(parents=True)  # a dir where the archive has a file
    (root / "out" / "d" / "keep").write_text("k")
    untar.untar(str(archive), str(root), "/out", owner=None, timestamp=None)
    assert (root / "out" / "d" / "f").read_bytes() == b"data\n"
    assert (root / "out" / "d" / "keep").read_text() == "k"


def test_not_archives(tmp_path: Path) -> None:
    text = tmp_path / "notatar.tar.gz"
    text.write_text("just text\n")
    assert not untar.is_archive(str(text))
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"not a tar at all" * 40))
    assert not untar.is_archive(str(bad))
    assert not untar.is_archive(str(tmp_path))


@pytest.mark.parametrize("kind", ["plain", "gzip"])
def test_a_truncated_archive_fails_like_go(tmp_path: Path, kind: str) -> None:
    big = _tar([_entry("a.txt"), _entry("b.bin")], {"a.txt": b"a\n", "b.bin": bytes(16384)})
    data = COMPRESSORS[kind](big)
    archive = tmp_path / "cut.tar"
    archive.write_bytes(data[: len(data) // 2] if kind == "plain" else data[:-20])
    root = tmp_path / "root"
    root.mkdir()
    assert untar.is_archive(str(archive))
    with pytest.raises(BuildError, match=r"^unexpected EOF$"):
        untar.untar(str(archive), str(root), "/t", owner=None, timestamp=None)
