"""The fast layer writer gives exactly the bytes of a straightforward writer, and those
are the bytes of Go's archive/tar (what BuildKit's layers are made of).

The reference below is the straightforward implementation the fast path replaced: the
general Go-format header (``tar_header._go_header``) per entry, a fresh lstat per path,
1 MiB reads. ``test_header_bytes_are_go_archive_tar_bytes`` pins that general path to
digests of headers written by Go's ``tar.Writer`` (with ``Format: tar.FormatPAX``, as
containerd's change writer sets it).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import socket
import stat
import tarfile
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buildkit_py.snapshot import (
    Compression,
    CopySnapshotter,
    EntryKind,
    LayerEntry,
    LayerError,
    LayerWriter,
    OverlaySnapshotter,
    export_layer,
    mounted,
    write_layer_tar,
)
from buildkit_py.snapshot.tar_header import _go_header, header
from tests.snapshot.conftest import CAP_NET_BIND, T0, T1, set_times

# A capability value that is not valid UTF-8 (Go writes the record's bytes as they are).
CAP_BINARY = b"\x01\x00\x00\x02" + b"\xff\xfe\xfd\x00" + bytes(12)
BIG_ID = 3_000_000  # over the 7 octal digits of the ustar uid/gid fields


def _reference_tar(entries: Iterable[LayerEntry], source: Path, epoch: int | None) -> bytes:
    out = io.BytesIO()
    links: dict[tuple[int, int], str] = {}

    def mtime(seconds: float) -> int:
        t = int(seconds)
        return t if epoch is None or t <= epoch else epoch

    for e in entries:
        if e.kind is EntryKind.WHITEOUT:
            parent, _, name = e.path.rpartition("/")
            # whiteouts are dated 1970-01-01 (containerd 2.0)
            out.write(_go_header(f"{parent}/.wh.{name}" if parent else f".wh.{name}", b"0",
                                 0, 0, 0, 0, 0, "", 0, 0, None))
            continue
        full = source / e.path
        s = os.lstat(full)
        name, typeflag, link, size, major, minor = e.path, b"0", "", 0, 0, 0
        data = b""
        if stat.S_ISREG(s.st_mode):
            first = links.get((s.st_dev, s.st_ino)) if s.st_nlink > 1 else None
            if s.st_nlink > 1 and first is None:
                links[(s.st_dev, s.st_ino)] = e.path
            if first is not None:
                typeflag, link = b"1", first
            else:
                data = full.read_bytes()
                size = len(data)
        elif stat.S_ISDIR(s.st_mode):
            typeflag, name = b"5", name + "/"
        elif stat.S_ISLNK(s.st_mode):
            typeflag, link = b"2", os.readlink(full)
        elif stat.S_ISCHR(s.st_mode) or stat.S_ISBLK(s.st_mode):
            typeflag = b"3" if stat.S_ISCHR(s.st_mode) else b"4"
            major, minor = os.major(s.st_rdev), os.minor(s.st_rdev)
        elif stat.S_ISFIFO(s.st_mode):
            typeflag = b"6"
        else:
            continue
        pax = None
        if typeflag != b"1":
            try:
                cap = os.getxattr(full, "security.capability", follow_symlinks=False)
                pax = {"SCHILY.xattr.security.capability":
                       cap.decode("utf-8", "surrogateescape")}
            except OSError:
                pass
        out.write(_go_header(name, typeflag, stat.S_IMODE(s.st_mode), s.st_uid, s.st_gid,
                             size, mtime(s.st_mtime), link, major, minor, pax))
        out.write(data + bytes(-len(data) % 512))
    out.write(bytes(1024))
    return out.getvalue()


def _base(r: Path) -> None:
    (r / "gone.txt").write_text("x")
    (r / "dir/sub").mkdir(parents=True)
    (r / "dir/sub/old").write_text("old")
    (r / "keep").mkdir()
    (r / "keep/unchanged").write_text("same")
    (r / "keep/rm").write_text("rm")
    set_times(r, T0)


def _every_kind(r: Path) -> None:
    """Changes over ``_base`` touching every kind of layer entry."""
    (r / "gone.txt").unlink()
    (r / "keep/rm").unlink()
    for name in ("dir/sub/old", "dir/sub"):
        p = r / name
        p.unlink() if p.is_file() else p.rmdir()
    (r / "dir/sub").mkdir(0o1777)  # recreated: opaque, listed as a diff of the lower dir
    (r / "dir/sub/new").write_text("new")
    (r / "empty").write_bytes(b"")
    (r / "block512").write_bytes(b"b" * 512)
    (r / "mid").write_bytes(os.urandom((1 << 20) + 1))  # over one whole-file read
    (r / "large").write_bytes(os.urandom((9 << 20) + 123))  # several chunked reads
    long_dir = r / ("d" * 60) / ("e" * 60)
    long_dir.mkdir(parents=True)
    (long_dir / ("f" * 90)).write_text("long name")  # path over 100 bytes: PAX path
    os.link(long_dir / ("f" * 90), r / "zz-link-to-long")  # hardlink, long linkpath
    (r / "a-file").write_text("linked")
    os.link(r / "a-file", r / "b-hardlink")
    os.link(r / "a-file", r / "keep/c-hardlink")
    os.symlink("a-file", r / "sym")
    os.symlink("/" + "t" * 150, r / "sym-long")  # target over 100 bytes: PAX linkpath
    os.symlink("caf\u00e9", r / "sym-unicode")
    (r / "unicod\u00e9-\u2603").write_text("utf-8 name")
    with open(os.path.join(os.fsencode(r), b"latin1-\xe9"), "wb") as f:  # not UTF-8
        f.write(b"raw name")
    (r / "suid").write_text("#!/bin/sh\n")
    os.chmod(r / "suid", 0o4755)
    (r / "bigid").write_text("owner")
    os.chown(r / "bigid", BIG_ID, BIG_ID + 1)
    os.lchown(r / "sym", 1000, BIG_ID)
    (r / "cap").write_bytes(b"\x7fELF")
    os.setxattr(r / "cap", "security.capability", CAP_NET_BIND)
    os.setxattr(r / "cap", "user.other", b"dropped")
    (r / "cap-binary").write_bytes(b"\x7fELF")
    os.setxattr(r / "cap-binary", "security.capability", CAP_BINARY)
    os.mknod(r / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(r / "blk", 0o600 | stat.S_IFBLK, os.makedev(259, 70000))
    os.mkfifo(r / "fifo", 0o640)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(r / "sock"))  # sockets are skipped
    sock.close()
    (r / "prehistoric").write_text("1969")
    os.utime(r / "prehistoric", (-100, -100))  # negative mtime: PAX mtime
    (r / "far-future").write_text("2300")
    os.utime(r / "far-future", (8**11 + 5, 8**11 + 5))  # over 11 octal digits
    (r / "recent").write_text("clamped by SOURCE_DATE_EPOCH")
    os.utime(r / "recent", (T1 + 10, T1 + 10))


@pytest.fixture
def changed(overlay: OverlaySnapshotter) -> tuple[OverlaySnapshotter, list[LayerEntry], Path]:
    with mounted(overlay.prepare("base-a")) as r:
        _base(r)
    overlay.commit("base", "base-a")
    with mounted(overlay.prepare("c", "base")) as r:
        _every_kind(r)
    return overlay, overlay.changes("c"), overlay._fs(overlay._db.get("c").id)


@pytest.mark.root
@pytest.mark.parametrize("epoch", [None, T1])
def test_fast_writer_bytes_equal_reference(
    changed: tuple[OverlaySnapshotter, list[LayerEntry], Path], epoch: int | None
) -> None:
    _, entries, upper = changed
    kinds = {e.kind for e in entries}
    assert kinds == {EntryKind.PATH, EntryKind.WHITEOUT}
    out = io.BytesIO()
    write_layer_tar(entries, upper, out, source_date_epoch=epoch)
    data = out.getvalue()
    assert data == _reference_tar(entries, upper, epoch)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        members = {m.name: m for m in tf}
    assert "sock" not in members
    assert b" SCHILY.xattr.security.capability=" + CAP_BINARY + b"\n" in data
    assert (members["bigid"].uid, members["bigid"].gid) == (BIG_ID, BIG_ID + 1)
    assert members["blk"].isblk() and members["blk"].devminor == 70000
    assert members["zz-link-to-long"].islnk()
    assert members["large"].size == (9 << 20) + 123
    assert members["prehistoric"].mtime == -100


@pytest.mark.root
def test_entries_without_walk_stats_give_the_same_bytes(
    changed: tuple[OverlaySnapshotter, list[LayerEntry], Path],
) -> None:
    _, entries, upper = changed
    assert any(e.st is not None for e in entries)
    bare = [LayerEntry(e.path, e.kind, e.change) for e in entries]
    assert bare == entries  # the stat is a cache, not part of the entry's identity
    a, b = io.BytesIO(), io.BytesIO()
    write_layer_tar(entries, upper, a)
    write_layer_tar(bare, upper, b)
    assert a.getvalue() == b.getvalue()


@pytest.mark.root
@pytest.mark.parametrize("compression", list(Compression))
def test_every_compression_wraps_the_reference_tar(
    changed: tuple[OverlaySnapshotter, list[LayerEntry], Path], compression: Compression
) -> None:
    snap, entries, upper = changed
    expected = _reference_tar(entries, upper, None)
    out = io.BytesIO()
    desc = snap.export_layer("c", out, compression=compression)
    blob = out.getvalue()
    assert desc.diff_id == "sha256:" + hashlib.sha256(expected).hexdigest()
    assert desc.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert desc.size == len(blob) and desc.uncompressed_size == len(expected)
    if compression is Compression.GZIP:
        assert gzip.decompress(blob) == expected
    elif compression is Compression.ZSTD:
        import zstandard

        assert zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob)).read() == expected
    else:
        assert blob == expected


@pytest.mark.root
def test_copy_snapshotter_diff_gives_reference_bytes(native: CopySnapshotter) -> None:
    with mounted(native.prepare("base-a")) as r:
        _base(r)
    native.commit("base", "base-a")
    with mounted(native.prepare("c", "base")) as r:
        _every_kind(r)
    entries = native.changes("c")
    upper = native._fs(native._db.get("c").id)
    out = io.BytesIO()
    desc = export_layer(entries, upper, out, compression=Compression.UNCOMPRESSED)
    assert out.getvalue() == _reference_tar(entries, upper, None)
    assert desc.digest == desc.diff_id


@pytest.mark.root
@pytest.mark.parametrize("size", [5000, (3 << 20) + 5])
def test_file_shrunk_after_the_walk_is_an_error(
    overlay: OverlaySnapshotter, size: int
) -> None:
    with mounted(overlay.prepare("a")) as r:
        (r / "f").write_bytes(b"x" * size)
    upper = overlay._fs(overlay._db.get("a").id)
    entries = overlay.changes("a")  # carries the stat with the old size
    os.truncate(upper / "f", size // 2)
    with pytest.raises(LayerError, match="shrank"):
        write_layer_tar(entries, upper, io.BytesIO())


_TYPES = [b"0", b"1", b"2", b"3", b"4", b"5", b"6"]
_names = st.text(st.characters(min_codepoint=1, max_codepoint=0x2FFF), min_size=1,
                 max_size=160) | st.text("abc/._-", min_size=1, max_size=130)
_surrogate_names = st.binary(min_size=1, max_size=120).filter(lambda b: b"\0" not in b).map(
    lambda b: b.decode("utf-8", "surrogateescape"))


def _check_header(name: str, typeflag: bytes, *args: object, **kw: object) -> None:
    """The fast path gives the general (Go-format) path's bytes."""
    if typeflag == b"5" and not name.endswith("/"):
        name += "/"  # the writer passes directory names with their slash
    values = list(args) + [kw.get(k, d) for k, d in
                           (("linkname", ""), ("devmajor", 0), ("devminor", 0),
                            ("pax", None))][len(args) - 5:]
    expected = _go_header(name, typeflag, *values)  # type: ignore[arg-type]
    assert header(name, typeflag, *args, **kw) == expected  # type: ignore[arg-type]


# Headers as Go's tar.Writer writes them: (arguments of ``header``, sha256 of Go's bytes).
_CAP = {"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\udcff"}
_GO_HEADERS: list[tuple[tuple[object, ...], str]] = [
    (("etc/passwd", b"0", 0o644, 0, 0, 155, 1700000000),
     "11d7dfe26420fab9895d415164415fa548ca74d4ccafffbd087c9d16500d957d"),
    (("etc/", b"5", 0o755, 0, 0, 0, 1700000000),
     "e98b1551a94b9d620947525612de08e186f5c45663ac19dc85bc3a57b92189b3"),
    (("bin/sh", b"2", 0o777, 0, 0, 0, 1600000000, "busybox"),
     "270473a49dad5c1cdd9237571eb3aadb6729742189e960b46ed6df2a1299061b"),
    (("bin/hard", b"1", 0o644, 0, 0, 0, 1600000000, "bin/busybox"),
     "04b78460db56b62df8fef5f3055d59bd9550f32c3d2bc134e95215a7b9113ab4"),
    (("dev/null", b"3", 0o666, 0, 0, 0, 1700000000, "", 1, 3),
     "bb080735551fdd39609259a476aac794f6f35e8ea3be12eea12ba72a055e84b3"),
    # over 100 bytes but splittable: USTAR with a prefix, no PAX header
    (("p/" + "d" * 60 + "/" + "e" * 60 + "/" + "f" * 90, b"0", 0o644, 0, 0, 0, 1700000000),
     "b096c4d6202438de979faf0a99d214432836ab2d273e723cdf433d2cd6ec91a0"),
    # not splittable: PAX path record, header named .../PaxHeaders.0
    (("q/" + "x" * 200 + "/" + "y" * 100 + "/", b"5", 0o755, 0, 0, 0, 1700000000),
     "ec98cda205c2b848b02e4f94dcced796964eebdb84768040e784a52504bdf9a4"),
    (("na\u00efve/\u00fc.txt", b"0", 0o644, 0, 0, 2, 1700000000),
     "1537baff9175295c586a9a60b88a582f0e998ae44f0c7c0b2be50215da12050b"),
    (("link", b"2", 0o777, 0, 0, 0, 1700000000, "/" + "t" * 150),
     "38dd873ba15db84fcb80da4bed26693b90b3d75f13f655413d9cba1c1da51a56"),
    (("big-uid", b"0", 0o644, BIG_ID, BIG_ID + 1, 0, 1700000000),
     "43af8aac268869cb573dc939d7239ed0d5a06b00b4b00ee6c9b0c47f5f9df6a6"),
    (("huge", b"0", 0o644, 0, 0, 8**11 + 5, 1700000000),
     "21d323e4ea277a479f4f986998962b28a3acee95f8c38cd1b5caeba54c648b0e"),
    (("old", b"0", 0o644, 0, 0, 0, -100),
     "436310e006ee4f6316c2f71d4edaaa22eba7c24c01052d8287322cea9f059633"),
    (("ping", b"0", 0o4755, 0, 0, 0, 1700000000, "", 0, 0, _CAP),
     "c6774b18602c2bf738ca0c62fb9489f270680d25b8d4a3e6f225c7de842d45fd"),
    (("s" * 99 + "/", b"5", 0o2775, 1000, 50, 0, 1700000000),
     "6411d1ac1898b4453f931e5a4ac78468ce69ddab7d287bcd3c86c3a92a9eb9c8"),
]


@pytest.mark.parametrize(("args", "digest"), _GO_HEADERS)
def test_header_bytes_are_go_archive_tar_bytes(args: tuple[object, ...], digest: str) -> None:
    got = header(*args)  # type: ignore[arg-type]
    assert hashlib.sha256(got).hexdigest() == digest


@pytest.mark.parametrize(("field", "values"), [
    ("uid", [0, 8**7 - 1, 8**7, 2**32 - 1]),
    ("gid", [0, 8**7 - 1, 8**7]),
    ("size", [0, 1, 8**11 - 1, 8**11]),
    ("mtime", [-(2**33), -1, 0, 8**11 - 1, 8**11]),
    ("mode", [0, 0o4755, 0o7777]),
])
def test_header_numbers_at_field_limits(field: str, values: list[int]) -> None:
    for value in values:
        nums = {"mode": 0o644, "uid": 1, "gid": 2, "size": 3, "mtime": T0, field: value}
        for typeflag in (b"0", b"5"):
            _check_header("some/file", typeflag, nums["mode"], nums["uid"], nums["gid"],
                          nums["size"] if typeflag == b"0" else 0, nums["mtime"])


@pytest.mark.parametrize("length", [1, 99, 100, 101, 155, 300])
def test_header_name_and_link_lengths(length: int) -> None:
    name = ("n/" * length)[:length].rstrip("/") or "n"
    _check_header(name, b"0", 0o644, 0, 0, 10, T0)
    _check_header(name, b"5", 0o755, 0, 0, 0, T0)
    _check_header("link", b"2", 0o777, 0, 0, 0, T0, "t" * length)
    _check_header("hard", b"1", 0o644, 0, 0, 0, T0, name)
    _check_header(name, b"3", 0o666, 0, 0, 0, T0, "", 1, 3)


@settings(max_examples=300, deadline=None)
@given(
    name=_names | _surrogate_names,
    typeflag=st.sampled_from(_TYPES),
    mode=st.integers(0, 0o7777),
    uid=st.integers(0, 8**7 + 10),
    gid=st.integers(0, 8**7 + 10),
    size=st.integers(0, 8**11 + 10),
    mtime=st.integers(-(2**33), 8**11 + 10),
    linkname=st.just("") | _names | _surrogate_names,
    devmajor=st.integers(0, 4095),
    devminor=st.integers(0, 2**20 - 1),
    cap=st.none() | st.binary(max_size=24),
)
def test_header_fast_path_equals_general_path(
    name: str, typeflag: bytes, mode: int, uid: int, gid: int, size: int, mtime: int,
    linkname: str, devmajor: int, devminor: int, cap: bytes | None,
) -> None:
    pax = None if cap is None else {
        "SCHILY.xattr.security.capability": cap.decode("utf-8", "surrogateescape")}
    _check_header(name, typeflag, mode, uid, gid, size, mtime, linkname, devmajor, devminor,
                  pax)


def test_gzip_blob_does_not_depend_on_write_sizes() -> None:
    """Blocks are cut at fixed 1 MiB offsets of the tar stream, whatever the writes."""
    payload = os.urandom(3 << 20) + b"layer " * 400_000 + os.urandom(12_345)
    blobs = set()
    for sizes in ([1 << 20], [4 << 20], [100, 5000, 3 << 20], [(1 << 20) - 1], [(1 << 20) + 1, 7]):
        out = io.BytesIO()
        w = LayerWriter(out, Compression.GZIP)
        pos = i = 0
        while pos < len(payload):
            n = sizes[i % len(sizes)]
            w.write(payload[pos:pos + n])
            pos += n
            i += 1
        desc = w.close()
        assert desc.diff_id == "sha256:" + hashlib.sha256(payload).hexdigest()
        blobs.add(out.getvalue())
    assert len(blobs) == 1
    assert gzip.decompress(blobs.pop()) == payload
