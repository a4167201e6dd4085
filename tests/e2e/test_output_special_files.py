"""A tar output whose dest is a device or a FIFO is written into it, as buildx writes it,
never replaced by a regular file (``-o type=tar,dest=/dev/null`` once put a regular file
where the machine's ``/dev/null`` was)."""

from __future__ import annotations

import os
import stat
import tarfile
import threading
from pathlib import Path

import pytest

from tests.e2e.conftest import Bkpy, write_context


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    return write_context(tmp_path, "FROM scratch\nCOPY hello.txt /hello.txt\n",
                         {"hello.txt": "hello\n"})


@pytest.mark.parametrize("kind", ["tar", "oci", "docker"])
def test_a_device_dest_stays_a_device(bkpy: Bkpy, ctx: Path, tmp_path: Path,
                                      kind: str) -> None:
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a /dev/null of our own
    extra = ",name=special/out" if kind != "tar" else ""
    bkpy("build", "-o", f"type={kind},dest={null}{extra}", str(ctx))
    assert stat.S_ISCHR(null.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ctx", "null"]  # no null.tmp


def test_a_fifo_dest_gets_the_tar(bkpy: Bkpy, ctx: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    bkpy("build", "-o", f"type=tar,dest={fifo}", str(ctx))
    reader.join(timeout=30)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    (tmp_path / "out.tar").write_bytes(got[0])
    with tarfile.open(tmp_path / "out.tar") as tf:
        hello = tf.extractfile("hello.txt")
        assert hello is not None and hello.read() == b"hello\n"



def test_missing_folders_are_made_and_a_directory_is_refused(bkpy: Bkpy, ctx: Path,
                                                             tmp_path: Path) -> None:
    """What the referee (buildx 461836ba0 on buildkit 73ed6825c) did with the same dests on
    2026-12-06: it made the missing folders, and refused a directory with exit status 1
    and this line."""
    deep = tmp_path / "a" / "b" / "out.tar"
    bkpy("build", "-o", f"type=tar,dest={deep}", str(ctx))
    with tarfile.open(deep) as tf:
        assert "hello.txt" in tf.getnames()
    folder = tmp_path / "a"
    r = bkpy("build", "-o", f"type=tar,dest={folder}", str(ctx), check=False)
    assert r.code == 1
    assert r.err.rstrip().splitlines()[-1] == (
        f"ERROR: failed to build: destination file {folder} is a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "ctx"]  # no a.tmp
