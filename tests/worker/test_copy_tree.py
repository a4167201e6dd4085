"""The parallel tree copy of COPY: metadata, links, replacement and confinement on big trees."""

from __future__ import annotations

import os
import shutil
import stat
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildkit_py.errors import BuildError
from buildkit_py.worker import fileops
from buildkit_py.worker.fileops import CopyOptions, CopyStats, Owner

# a v2 file capability: cap_net_bind_service, permitted + effective
_CAP = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)


def _tree(root: Path, dirs: int = 6, per_dir: int = 150) -> None:
    """More files than one copy batch, spread over directories, with varied modes."""
    for d in range(dirs):
        sub = root / f"d{d}"
        sub.mkdir(parents=True)
        for i in range(per_dir):
            f = sub / f"f{i:03d}"
            f.write_bytes(os.urandom(i * 37 % 5000))
            os.chmod(f, 0o600 + (i % 3) * 0o044)
            os.utime(f, ns=(1_000_000_000 * i, 1_000_000_000 * (i + 1)))
        os.utime(sub, ns=(5_000_000_000, 6_000_000_000 + d))


def _snapshot(root: Path) -> dict[str, tuple[int, int, int, int, bytes]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            data = p.read_bytes() if stat.S_ISREG(st.st_mode) else b""
            out[str(p.relative_to(root))] = (st.st_mode, st.st_uid, st.st_gid,
                                             st.st_mtime_ns, data)
    return out


@pytest.fixture
def src(tmp_path: Path) -> Path:
    s = tmp_path / "src"
    _tree(s)
    return s


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    d = tmp_path / "dest"
    d.mkdir()
    return d


def test_large_tree_copy_keeps_content_modes_owners_and_times(src: Path, dest: Path) -> None:
    stats = CopyStats()
    fileops.copy(str(src), "/", str(dest), "/out/", CopyOptions(stats=stats))
    assert _snapshot(dest / "out") == _snapshot(src)
    assert stats.files == 900
    assert stats.bytes == sum(p.stat().st_size for p in src.rglob("*") if p.is_file())


def test_directory_copied_as_itself_keeps_its_time(src: Path, dest: Path) -> None:
    fileops.copy(str(src), "/d1", str(dest), "/x/", CopyOptions(dir_copy_contents=False))
    assert _snapshot(dest / "x" / "d1") == _snapshot(src / "d1")
    assert (dest / "x" / "d1").stat().st_mtime_ns == (src / "d1").stat().st_mtime_ns


def test_chown_and_mode_override_apply_to_every_file(src: Path, dest: Path) -> None:
    fileops.copy(str(src), "/", str(dest), "/o/",
                 CopyOptions(owner=Owner(1234, 4321), mode=lambda _m, d: 0o750 if d else 0o640,
                             timestamp=77))
    for p in (dest / "o").rglob("*"):
        st = p.lstat()
        assert (st.st_uid, st.st_gid) == (1234, 4321)
        assert stat.S_IMODE(st.st_mode) == (0o750 if p.is_dir() else 0o640)
        assert st.st_mtime == 77


def test_xattrs_setuid_and_capabilities_survive_chown(tmp_path: Path, dest: Path) -> None:
    s = tmp_path / "caps"
    (s / "bin").mkdir(parents=True)
    tool = s / "bin" / "tool"
    tool.write_bytes(b"\x7fELF")
    os.setxattr(tool, "user.note", b"kept")
    os.setxattr(s / "bin", "user.dir", b"also")
    os.setxattr(tool, "security.capability", _CAP)
    suid = s / "bin" / "suid"
    suid.write_bytes(b"x")
    os.chmod(suid, 0o4755)
    fileops.copy(str(s), "/", str(dest), "/", CopyOptions(owner=Owner(1000, 1000)))
    out = dest / "bin"
    assert os.getxattr(out / "tool", "user.note") == b"kept"
    assert os.getxattr(out, "user.dir") == b"also"
    assert os.getxattr(out / "tool", "security.capability") == _CAP
    assert stat.S_IMODE((out / "suid").stat().st_mode) == 0o4755
    assert (out / "suid").stat().st_uid == 1000


def test_single_file_copy_keeps_capability_through_chown(tmp_path: Path, dest: Path) -> None:
    f = tmp_path / "ping"
    f.write_bytes(b"bin")
    os.setxattr(f, "security.capability", _CAP)
    fileops.copy(str(tmp_path), "/ping", str(dest), "/usr/bin/", CopyOptions(owner=Owner(5, 5)))
    assert os.getxattr(dest / "usr" / "bin" / "ping", "security.capability") == _CAP


def test_hardlinks_across_directories_stay_one_inode(src: Path, dest: Path) -> None:
    os.link(src / "d0" / "f001", src / "d5" / "zz-link")
    os.link(src / "d0" / "f001", src / "d0" / "a-first")
    fileops.copy(str(src), "/", str(dest), "/", CopyOptions())
    inodes = {(dest / p).stat().st_ino for p in ("d0/f001", "d5/zz-link", "d0/a-first")}
    assert len(inodes) == 1
    assert (dest / "d5" / "zz-link").read_bytes() == (src / "d0" / "f001").read_bytes()
    # the link is created before directory times are set
    assert (dest / "d5").stat().st_mtime_ns == (src / "d5").stat().st_mtime_ns


def test_symlinks_fifos_kept_and_sockets_skipped(tmp_path: Path, dest: Path) -> None:
    s = tmp_path / "special"
    s.mkdir()
    os.symlink("../nowhere", s / "ln")
    os.mkfifo(s / "pipe")
    sock_dir = tempfile.mkdtemp(dir=s)  # a short path for the socket
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(os.path.join(sock_dir, "s"))
        fileops.copy(str(s), "/", str(dest), "/", CopyOptions())
    assert os.readlink(dest / "ln") == "../nowhere"
    assert stat.S_ISFIFO((dest / "pipe").lstat().st_mode)
    assert not (dest / os.path.basename(sock_dir) / "s").exists()


def test_existing_files_are_replaced_and_symlinks_never_followed(
        src: Path, dest: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (dest / "d0").mkdir()
    (dest / "d0" / "f000").write_text("old")
    os.symlink(str(outside / "target"), dest / "d0" / "f001")
    fileops.copy(str(src), "/", str(dest), "/", CopyOptions())
    assert (dest / "d0" / "f000").read_bytes() == (src / "d0" / "f000").read_bytes()
    assert not (dest / "d0" / "f001").is_symlink()
    assert not (outside / "target").exists()


def test_directory_onto_symlink_is_refused_without_writing_outside(
        src: Path, dest: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), dest / "d3")
    with pytest.raises(BuildError, match="non-directory"):
        fileops.copy(str(src), "/", str(dest), "/", CopyOptions())
    assert os.listdir(outside) == []


def test_file_onto_existing_directory_fails_from_the_pool(src: Path, dest: Path) -> None:
    (dest / "d2" / "f100").mkdir(parents=True)
    with pytest.raises(BuildError, match="cannot replace directory"):
        fileops.copy(str(src), "/", str(dest), "/", CopyOptions())


def test_always_replace_swaps_a_directory_for_a_file(src: Path, dest: Path) -> None:
    (dest / "d2" / "f100" / "inner").mkdir(parents=True)
    fileops.copy(str(src), "/", str(dest), "/",
                 CopyOptions(always_replace_existing_dest_paths=True))
    assert (dest / "d2" / "f100").read_bytes() == (src / "d2" / "f100").read_bytes()


def test_reincluded_file_in_excluded_directory_is_copied(src: Path, dest: Path) -> None:
    def keep(p: str) -> bool:
        return not p.startswith("d4") or p == "d4/f007"

    fileops.copy(str(src), "/", str(dest), "/", CopyOptions(keep=keep))
    assert os.listdir(dest / "d4") == ["f007"]
    assert len(os.listdir(dest / "d3")) == 150


@pytest.fixture
def shm_src() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        _tree(d, dirs=2, per_dir=40)
        yield d
    finally:
        shutil.rmtree(d)


def test_copy_across_filesystems_falls_back_from_copy_file_range(
        shm_src: Path, dest: Path) -> None:
    fileops.copy(str(shm_src), "/", str(dest), "/", CopyOptions())
    assert _snapshot(dest) == _snapshot(shm_src)


def test_reincluded_file_under_a_destination_symlink_is_refused(
        src: Path, dest: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), dest / "d4")

    def keep(p: str) -> bool:
        return not p.startswith("d4") or p == "d4/f007"

    with pytest.raises(BuildError, match="not a directory"):
        fileops.copy(str(src), "/", str(dest), "/", CopyOptions(keep=keep))
    assert os.listdir(outside) == []
