"""BuildKit's byte counts of a directory transfer, checked against protobuf's own encoder
of fsutil's messages (declared here from fsutil's wire.proto/stat.proto) and against
the referee's recorded figures (testdata/screens)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from buildkit_py.worker.transfer_size import (
    Entry,
    TooManyEntries,
    TransferLedger,
    data_packets,
    listing,
    transfer_size,
)

F = descriptor_pb2.FieldDescriptorProto


def _fsutil_packet() -> Any:
    """fsutil's Packet (type, stat, ID, data) and Stat, as protobuf classes."""
    fd = descriptor_pb2.FileDescriptorProto(name="fsutil_test.proto", package="fsutiltest",
                                            syntax="proto3")
    stat = fd.message_type.add(name="Stat")
    for number, (name, kind) in enumerate(
            [("path", F.TYPE_STRING), ("mode", F.TYPE_UINT32), ("uid", F.TYPE_UINT32),
             ("gid", F.TYPE_UINT32), ("size", F.TYPE_INT64), ("modTime", F.TYPE_INT64),
             ("linkname", F.TYPE_STRING), ("devmajor", F.TYPE_INT64),
             ("devminor", F.TYPE_INT64)], start=1):
        stat.field.add(name=name, number=number, type=kind, label=F.LABEL_OPTIONAL)
    entry = stat.nested_type.add(name="XattrsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=F.TYPE_BYTES, label=F.LABEL_OPTIONAL)
    stat.field.add(name="xattrs", number=10, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                   type_name=".fsutiltest.Stat.XattrsEntry")
    packet = fd.message_type.add(name="Packet")
    packet.field.add(name="type", number=1, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    packet.field.add(name="stat", number=2, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                     type_name=".fsutiltest.Stat")
    packet.field.add(name="ID", number=3, type=F.TYPE_UINT32, label=F.LABEL_OPTIONAL)
    packet.field.add(name="data", number=4, type=F.TYPE_BYTES, label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("fsutiltest.Packet"))


Packet = _fsutil_packet()
STAT, DATA = 0, 2


def test_stat_packets_are_protobufs_sizes() -> None:
    entries = [
        Entry("a.txt", 0o644, 0, 0, 2, 1_796_521_540_195_393_162),
        Entry("sub", (1 << 31) | 0o755, 1000, 1000, 0, 1_796_521_540_195_393_162),
        Entry("link", (1 << 27) | 0o777, 0, 0, 5, 1_700_000_000_000_000_000, "a.txt"),
        Entry("dev", (1 << 26) | (1 << 21) | 0o600, 0, 0, 0, -1, "", 1, 3),
        Entry("x" * 200, 0o600, 70000, 5, 1 << 40, 0,
              xattrs=(("user.a", b"v"), ("security.selinux", b"x" * 150))),
    ]
    for e in entries:
        p = Packet(type=STAT)
        p.stat.path, p.stat.mode, p.stat.uid, p.stat.gid = e.path, e.mode, e.uid, e.gid
        p.stat.size, p.stat.modTime, p.stat.linkname = e.size, e.mtime_ns, e.linkname
        p.stat.devmajor, p.stat.devminor = e.devmajor, e.devminor
        for k, v in e.xattrs:
            p.stat.xattrs[k] = v
        assert e.stat_packet() == p.ByteSize(), e.path


def test_data_packets_are_32k_chunks_then_an_empty_one() -> None:
    for file_id, size in [(0, 0), (0, 2), (1, 2), (200, 32768), (3, 70000), (70000, 1)]:
        chunks = [min(32 << 10, size - at) for at in range(0, size, 32 << 10)]
        want = sum(Packet(type=DATA, ID=file_id, data=b"x" * n).ByteSize() for n in chunks)
        want += Packet(type=DATA, ID=file_id).ByteSize()
        assert data_packets(file_id, size) == want, (file_id, size)


def test_the_referees_two_file_context(tmp_path: Path) -> None:
    """rawjson-build.jsonl: 70B the first time; plain-cached.txt: 50B unchanged."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "b.txt").write_text("b\n")

    def files() -> list[Entry]:  # owned by root, as the referee's were: owners count
        return [dataclasses.replace(e, uid=0, gid=0)
                for e in listing(tmp_path, ["a.txt", "b.txt"])]

    entries = files()
    assert [e.path for e in entries] == ["a.txt", "b.txt"]
    ledger = TransferLedger(tmp_path / "ledger")
    assert transfer_size(entries, ledger.exchange(tmp_path, "context", entries)) == 70
    assert transfer_size(entries, ledger.exchange(tmp_path, "context", entries)) == 50
    os.utime(tmp_path / "b.txt", ns=(1, 1))
    again = files()
    # b.txt's stat shrinks (mtime 1: a 1-byte varint, not 9), its data is sent again
    # (file index 1: a chunk of 8 bytes, the empty end of 4)
    assert transfer_size(again, ledger.exchange(tmp_path, "context", again)) \
        == 50 - 8 + 8 + 4



def test_an_unchanged_listing_leaves_the_ledger_as_it_is(tmp_path: Path) -> None:
    """A no-op rebuild reads the ledger and writes nothing (same answer next time)."""
    (tmp_path / "a.txt").write_text("a\n")
    entries = listing(tmp_path, ["a.txt"])
    ledger = TransferLedger(tmp_path / "ledger")
    assert ledger.exchange(tmp_path, "context", entries) is None
    [record] = (tmp_path / "ledger").iterdir()
    before = record.stat().st_ino
    previous = ledger.exchange(tmp_path, "context", entries)
    assert previous is not None and list(previous) == ["a.txt"]
    assert record.stat().st_ino == before  # not replaced
    assert ledger.exchange(tmp_path, "context", entries) == previous
    os.utime(tmp_path / "a.txt", ns=(1, 1))
    changed = listing(tmp_path, ["a.txt"])
    assert ledger.exchange(tmp_path, "context", changed) == previous
    assert ledger.exchange(tmp_path, "context", changed) != previous  # the new one kept

def test_listing_follows_include_and_exclude_patterns(tmp_path: Path) -> None:
    for rel in ["a.txt", "sub/deep/d.txt", "sub/s.txt", "other/o.txt", "x.md"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    paths = [e.path for e in listing(tmp_path, (), ["other", "*.md"])]
    assert paths == ["a.txt", "sub", "sub/deep", "sub/deep/d.txt", "sub/s.txt"]
    # follow paths: the parents of what is sent, not their other entries
    assert [e.path for e in listing(tmp_path, ["sub/deep/d.txt"])] == \
        ["sub", "sub/deep", "sub/deep/d.txt"]
    assert [e.path for e in listing(tmp_path, ["*.txt"])] == ["a.txt"]
    assert [e.path for e in listing(tmp_path, [".dockerignore"])] == []
    assert transfer_size([]) == 2  # the FIN of an empty transfer ("transferring context: 2B")


def test_a_directory_over_the_limit_is_not_walked(tmp_path: Path) -> None:
    for i in range(12):
        (tmp_path / f"d{i % 3}").mkdir(exist_ok=True)
        (tmp_path / f"d{i % 3}" / f"f{i}").write_text("x")
    assert len(listing(tmp_path, limit=15)) == 15  # 3 directories + 12 files
    with pytest.raises(TooManyEntries):
        listing(tmp_path, limit=14)
