"""Content checksums for COPY cache keys: what changes them, and that unchanged files are
never read twice (the stat-keyed memo survives a new process via its sqlite table)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from buildkit_py.worker.checksum import ChecksumCache, Checksummer, Keep


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    for d in range(3):
        (root / f"d{d}").mkdir(parents=True)
        for i in range(200):  # more than one hashing batch
            (root / f"d{d}" / f"f{i}").write_text(f"{d}-{i}\n" * (i + 1))
    return root


def _digest(db: Path, root: Path, path: str = "/") -> tuple[str, Checksummer]:
    cache = ChecksumCache(db)
    summer = Checksummer(cache, zero_owner=True)
    digest = summer.selection(str(root), path)
    cache.close()
    return digest, summer


def test_second_pass_in_a_new_cache_reads_no_file(tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "sums.db"
    first, s1 = _digest(db, tree)
    assert (s1.files, s1.hashed) == (600, 600)
    second, s2 = _digest(db, tree)
    assert second == first
    assert (s2.files, s2.hashed) == (600, 0)


def test_one_changed_file_is_the_only_one_read(tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "sums.db"
    first, _ = _digest(db, tree)
    (tree / "d1" / "f7").write_text("changed\n")
    changed, summer = _digest(db, tree)
    assert changed != first
    assert summer.hashed == 1


def test_touching_a_file_rereads_it_but_keeps_the_digest(tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "sums.db"
    first, _ = _digest(db, tree)
    os.utime(tree / "d0" / "f3", ns=(1, 1))
    again, summer = _digest(db, tree)
    assert again == first
    assert summer.hashed == 1


def test_mode_and_deletion_change_the_digest(tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "sums.db"
    first, _ = _digest(db, tree)
    os.chmod(tree / "d2" / "f0", 0o755)
    moded, _ = _digest(db, tree)
    (tree / "d2" / "f1").unlink()
    removed, _ = _digest(db, tree)
    assert len({first, moded, removed}) == 3


def test_digest_does_not_depend_on_the_memo(tree: Path, tmp_path: Path) -> None:
    warm_db = tmp_path / "warm.db"
    _digest(warm_db, tree)
    warm, _ = _digest(warm_db, tree)
    cold, _ = _digest(tmp_path / "cold.db", tree)
    assert warm == cold


def test_sibling_prefix_is_not_taken_for_a_preloaded_directory(tmp_path: Path) -> None:
    # "ctx" is preloaded: rows of "ctx2" (a name sorting right after it) must still be found
    for name in ("ctx", "ctx2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text(name)
    db = tmp_path / "sums.db"
    _digest(db, tmp_path / "ctx2")
    _digest(db, tmp_path / "ctx")
    cache = ChecksumCache(db)
    summer = Checksummer(cache)
    summer.selection(str(tmp_path), "/ctx")
    summer.selection(str(tmp_path), "/ctx2")
    cache.close()
    assert summer.hashed == 0


def test_excluded_directory_counts_only_through_reincluded_children(
        tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "sums.db"
    only_d0, _ = _digest_keep(db, tree, lambda p: p.startswith("d0"))
    with_reinclude, summer = _digest_keep(
        db, tree, lambda p: p.startswith("d0") or p == "d1/f5")
    assert only_d0 != with_reinclude
    assert summer.files == 201


def _digest_keep(db: Path, root: Path, keep: Keep) -> tuple[str, Checksummer]:
    cache = ChecksumCache(db)
    summer = Checksummer(cache, zero_owner=True)
    digest = summer.selection(str(root), "/", keep=keep)
    cache.close()
    return digest, summer
