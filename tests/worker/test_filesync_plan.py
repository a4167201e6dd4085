"""The daemon side of a context re-transfer (session/filesync): what it keeps, deletes and
asks for, against a real previous copy on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from buildkit_py.api import control_pb2 as pb
from buildkit_py.errors import BuildError
from buildkit_py.session.filesync import ContextReceiver, ContextSender


def _sync(src: Path, dest: Path, incoming: Path) -> tuple[ContextReceiver, list[str]]:
    """One full transfer in-process; returns the receiver and the paths it fetched."""
    sender = ContextSender(src, [])
    listing = [s for batch in sender.listing() for s in batch]
    receiver = ContextReceiver(dest, incoming)
    to_hash, to_fetch = receiver.plan(listing)
    to_fetch += receiver.check_hashes(sender.hashes(to_hash))
    for fid in to_fetch:
        for frame in sender.chunks(fid):
            receiver.write(fid, frame)
        receiver.end(fid)
    receiver.finish()
    return receiver, [receiver.stats[i].path for i in to_fetch]


def _tree(root: Path) -> None:
    for d in range(3):
        for i in range(50):
            p = root / f"d{d}" / f"f{i}"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(f"{d}/{i}\n")
    os.symlink("d0/f0", root / "ln")


def test_unchanged_tree_fetches_nothing_and_one_change_fetches_one(tmp_path: Path) -> None:
    src, dest, inc = tmp_path / "src", tmp_path / "dest", tmp_path / "inc"
    _tree(src)
    _, fetched = _sync(src, dest, inc)
    assert len(fetched) == 150
    receiver, fetched = _sync(src, dest, inc)
    assert fetched == []
    assert receiver.stats_total.kept == 151
    (src / "d1" / "f3").write_text("new, longer content\n")
    _, fetched = _sync(src, dest, inc)
    assert fetched == ["d1/f3"]
    assert (dest / "d1" / "f3").read_text() == "new, longer content\n"


def test_removed_and_retyped_entries_are_deleted(tmp_path: Path) -> None:
    src, dest, inc = tmp_path / "src", tmp_path / "dest", tmp_path / "inc"
    _tree(src)
    _sync(src, dest, inc)
    for i in range(50):
        (src / "d2" / f"f{i}").unlink()
    (src / "d2").rmdir()
    (src / "d1" / "f0").unlink()
    (src / "d1" / "f0").mkdir()
    os.unlink(src / "ln")
    (src / "ln").write_text("now a file\n")
    receiver, fetched = _sync(src, dest, inc)
    assert not (dest / "d2").exists()
    assert (dest / "d1" / "f0").is_dir()
    assert (dest / "ln").read_text() == "now a file\n"
    assert fetched == ["ln"]
    assert receiver.stats_total.removed == 3  # d2 (with its files), d1/f0, ln


@pytest.mark.parametrize("bad", ["../escape", "/etc/passwd", "a/../../b", "a/./b"])
def test_listing_paths_outside_the_copy_are_refused(tmp_path: Path, bad: str) -> None:
    receiver = ContextReceiver(tmp_path / "dest", tmp_path / "inc")
    with pytest.raises(BuildError, match="invalid context path"):
        receiver.plan([pb.Stat(id=0, path=bad, mode=0o100644, size=1, mtime_ns=1)])
    assert not (tmp_path / "escape").exists()
