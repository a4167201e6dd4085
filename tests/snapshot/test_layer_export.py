"""Overlay upper dir -> OCI layer tar: entries, whiteouts, attributes, determinism."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import socket
import tarfile
from pathlib import Path

import pytest

from buildkit_py.content import LABEL_UNCOMPRESSED, ContentStore
from buildkit_py.snapshot import Compression, OverlaySnapshotter, apply_layer, mounted
from tests.snapshot.conftest import CAP_NET_BIND, T0, T1, layer_bytes, names, set_times, tar_summary

pytestmark = pytest.mark.root


def _base(s: OverlaySnapshotter) -> None:
    with mounted(s.prepare("base-a")) as r:
        (r / "etc").mkdir()
        (r / "etc/keep").write_text("keep")
        (r / "etc/old").write_text("old")
        (r / "etc/mod").write_text("v1")
        (r / "var/cache/pkg").mkdir(parents=True)
        (r / "var/cache/pkg/a").write_text("a")
        (r / "var/cache/pkg/b").write_text("b")
        (r / "rmdir/sub").mkdir(parents=True)
        (r / "rmdir/sub/x").write_text("x")
        set_times(r, T0)
    s.commit("base", "base-a")


def test_create_modify_delete_gives_entries_and_whiteouts(overlay: OverlaySnapshotter) -> None:
    _base(overlay)
    with mounted(overlay.prepare("c", "base")) as r:
        (r / "etc/old").unlink()
        (r / "etc/mod").write_text("v2")
        (r / "etc/new").write_text("new")
        shutil.rmtree(r / "rmdir")
        (r / "usr/bin").mkdir(parents=True)
        (r / "usr/bin/tool").write_text("#!/bin/sh\n")
        os.chmod(r / "usr/bin/tool", 0o4755)
    data = layer_bytes(overlay, "c")
    # in name order, deletions at their name's place (as BuildKit's overlay differ walks)
    assert names(data) == [
        "etc/",
        "etc/mod",
        "etc/new",
        "etc/.wh.old",
        ".wh.rmdir",
        "usr/",
        "usr/bin/",
        "usr/bin/tool",
    ]
    assert data[:5] == b"etc/\x00"  # directory names really end in "/"
    summary = {e[0]: e for e in tar_summary(data)}
    assert summary["etc/mod"][7] == b"v2"
    assert summary["usr/bin/tool"][2] == 0o4755
    assert summary["etc/.wh.old"][1] == "0" and summary["etc/.wh.old"][7] == b""
    # unchanged lower content is not in the layer
    assert "etc/keep" not in summary and "var/" not in summary


def test_recreated_directory_is_diffed_against_the_lower_one(
    overlay: OverlaySnapshotter,
) -> None:
    """overlayfs makes the recreated dir opaque; BuildKit's differ then lists a whiteout
    per lower entry gone instead of an opaque marker."""
    _base(overlay)
    with mounted(overlay.prepare("c", "base")) as r:
        shutil.rmtree(r / "var/cache/pkg")
        (r / "var/cache/pkg").mkdir()
        (r / "var/cache/pkg/fresh").write_text("f")
    assert names(layer_bytes(overlay, "c")) == [
        "var/",
        "var/cache/",
        "var/cache/pkg/",
        "var/cache/pkg/.wh.a",
        "var/cache/pkg/.wh.b",
        "var/cache/pkg/fresh",
    ]


def test_hardlinks_symlinks_devices_fifos_and_sockets(overlay: OverlaySnapshotter) -> None:
    with mounted(overlay.prepare("a")) as r:
        (r / "a").write_text("data")
        os.link(r / "a", r / "b")
        os.symlink("a", r / "link")
        os.symlink("/nowhere/abs", r / "abslink")
        os.mknod(r / "null", 0o666 | 0o020000, os.makedev(1, 3))
        os.mkfifo(r / "fifo", 0o640)
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(r / "sock"))
        sock.close()
        os.chown(r / "a", 1000, 2000)
    by_name = {e[0]: e for e in tar_summary(layer_bytes(overlay, "a"))}
    assert "sock" not in by_name
    assert by_name["a"][1:5] == ("0", 0o644, 1000, 2000)
    assert by_name["b"][1] == "1" and by_name["b"][6] == "a"  # hardlink to first path
    assert by_name["link"][1] == "2" and by_name["link"][6] == "a"
    assert by_name["abslink"][6] == "/nowhere/abs"
    assert by_name["fifo"][1] == "6" and by_name["fifo"][2] == 0o640
    with tarfile.open(fileobj=io.BytesIO(layer_bytes(overlay, "a"))) as tf:
        null = tf.getmember("null")
        assert null.ischr() and (null.devmajor, null.devminor) == (1, 3)
        assert null.uname == "" and null.gname == ""


def test_security_capability_is_kept_as_pax_xattr(overlay: OverlaySnapshotter) -> None:
    with mounted(overlay.prepare("a")) as r:
        (r / "ping").write_bytes(b"\x7fELF")
        os.setxattr(r / "ping", "security.capability", CAP_NET_BIND)
        os.setxattr(r / "ping", "user.ignored", b"x")
    with tarfile.open(fileobj=io.BytesIO(layer_bytes(overlay, "a"))) as tf:
        ping = tf.getmember("ping")
    raw = ping.pax_headers["SCHILY.xattr.security.capability"].encode("utf-8", "surrogateescape")
    assert raw == CAP_NET_BIND
    assert "SCHILY.xattr.user.ignored" not in ping.pax_headers


def test_same_tree_gives_identical_bytes_and_digests(tmp_path: Path) -> None:
    blobs = []
    for n in range(2):
        s = OverlaySnapshotter(tmp_path / f"s{n}")
        with mounted(s.prepare("a")) as r:
            for i in range(20):
                (r / f"d{i % 3}").mkdir(exist_ok=True)
                (r / f"d{i % 3}" / f"f{i}").write_bytes(os.urandom(0) + bytes([i]) * 1000)
            set_times(r, T1)
        out = io.BytesIO()
        desc = s.export_layer("a", out, compression=Compression.GZIP)
        blobs.append((out.getvalue(), desc))
        s.close()
    (b1, d1), (b2, d2) = blobs
    assert b1 == b2 and d1 == d2
    # gzip header carries no name and no timestamp
    assert b1[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    assert gzip.decompress(b1)[-1024:] == bytes(1024)


def test_source_date_epoch_clamps_mtimes(overlay: OverlaySnapshotter) -> None:
    with mounted(overlay.prepare("a")) as r:
        (r / "new").write_text("n")
        (r / "old").write_text("o")
        os.utime(r / "old", (T0, T0))
    by_name = {e[0]: e for e in tar_summary(layer_bytes(overlay, "a", source_date_epoch=T1))}
    assert by_name["new"][5] == T1
    assert by_name["old"][5] == T0


def test_compressions_share_the_diff_id(overlay: OverlaySnapshotter) -> None:
    with mounted(overlay.prepare("a")) as r:
        (r / "zeros").write_bytes(bytes(200_000))
        (r / "rand").write_bytes(os.urandom(50_000))
    results = {}
    for c in Compression:
        out = io.BytesIO()
        desc = overlay.export_layer("a", out, compression=c)
        assert desc.size == len(out.getvalue())
        results[c] = (desc, out.getvalue())
    diff_ids = {d.diff_id for d, _ in results.values()}
    assert len(diff_ids) == 1
    plain = results[Compression.UNCOMPRESSED][1]
    plain_desc = results[Compression.UNCOMPRESSED][0]
    assert plain_desc.digest == plain_desc.diff_id
    assert gzip.decompress(results[Compression.GZIP][1]) == plain
    import zstandard

    zdata = results[Compression.ZSTD][1]
    assert zstandard.ZstdDecompressor().stream_reader(io.BytesIO(zdata)).read() == plain
    assert results[Compression.ZSTD][0].media_type.endswith("+zstd")


def test_copy_up_without_change_is_not_a_change(overlay: OverlaySnapshotter) -> None:
    _base(overlay)
    with mounted(overlay.prepare("c", "base")) as r:
        # opening for writing copies the file up although nothing changes
        with open(r / "etc/keep", "r+b"):
            pass
        st = os.stat(r / "etc")
        os.utime(r / "etc", ns=(st.st_atime_ns, st.st_mtime_ns))
    upper = overlay._fs(overlay._db.get("c").id)
    assert (upper / "etc/keep").exists()
    assert overlay.changes("c") == []


def test_export_streams_into_the_content_store(
    overlay: OverlaySnapshotter, tmp_path: Path
) -> None:
    with mounted(overlay.prepare("a")) as r:
        (r / "payload").write_bytes(os.urandom(3_000_000))
    store = ContentStore(tmp_path / "state")
    with store.writer() as w:
        desc = overlay.export_layer("a", w, compression=Compression.ZSTD)
    store.update_labels(desc.digest, {LABEL_UNCOMPRESSED: desc.diff_id})
    assert w.digest == desc.digest and store.info(desc.digest).size == desc.size
    store.verify(desc.digest)
    target = tmp_path / "unpacked"
    target.mkdir()
    with store.open(desc.digest) as blob:
        assert apply_layer(blob, target).diff_id == desc.diff_id
    assert (target / "payload").stat().st_size == 3_000_000
    store.close()
