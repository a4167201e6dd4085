"""Fixtures and helpers for snapshotter / layer tests (need root for mounts)."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildkit_py.snapshot import Compression, CopySnapshotter, OverlaySnapshotter

# VFS_CAP_REVISION_2 with CAP_NET_BIND_SERVICE permitted+effective.
CAP_NET_BIND = b"\x01\x00\x00\x02" + (1 << 10).to_bytes(4, "little") + bytes(12)
T0 = 1_600_000_000
T1 = 1_700_000_000


@pytest.fixture
def overlay(tmp_path: Path) -> Iterator[OverlaySnapshotter]:
    s = OverlaySnapshotter(tmp_path / "overlayfs")
    yield s
    s.close()


@pytest.fixture
def native(tmp_path: Path) -> Iterator[CopySnapshotter]:
    s = CopySnapshotter(tmp_path / "native")
    yield s
    s.close()


def layer_bytes(snap: OverlaySnapshotter | CopySnapshotter, key: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    snap.export_layer(key, buf, compression=Compression.UNCOMPRESSED, **kw)  # type: ignore[arg-type]
    return buf.getvalue()


def tar_summary(data: bytes) -> list[tuple[str, str, int, int, int, int, str, bytes]]:
    """(name, type, mode, uid, gid, mtime, linkname, content) per entry, in order."""
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        for m in tf:
            content = b""
            if m.isreg():
                f = tf.extractfile(m)
                assert f is not None
                content = f.read()
            out.append((m.name, m.type.decode(), m.mode, m.uid, m.gid, int(m.mtime),
                        m.linkname, content))
    return out


def names(data: bytes) -> list[str]:
    """Entry names as written (tarfile drops a directory's trailing "/" on read)."""
    return [e[0] + "/" if e[1] == "5" else e[0] for e in tar_summary(data)]


def set_times(root: Path, t: int = T1) -> None:
    """Give every entry under ``root`` (and root) the same mtime, without
    following symlinks, so trees built at different moments compare equal."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for n in filenames + dirnames:
            os.utime(os.path.join(dirpath, n), (t, t), follow_symlinks=False)
    os.utime(root, (t, t))


def tree_state(root: Path) -> dict[str, tuple[object, ...]]:
    """Comparable description of a tree: type, mode, owner, mtime, content/target."""
    state: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = os.lstat(p)
            rel = str(p.relative_to(root))
            if p.is_symlink():
                extra: object = os.readlink(p)
            elif p.is_file():
                extra = p.read_bytes()
            else:
                extra = st.st_rdev if not p.is_dir() else None
            state[rel] = (st.st_mode, st.st_uid, st.st_gid, int(st.st_mtime), extra)
    return state
