"""Cache mount instances as records: use counts, in-use detection (from /proc/locks, or
by a probe where that does not show the locks) and removal that spares a held instance."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildkit_py.executor import cache_mounts
from buildkit_py.executor.cache_mounts import CacheMountManager


@pytest.mark.parametrize("proc_locks", [True, False])
def test_records_in_use_and_removal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    proc_locks: bool) -> None:
    if not proc_locks:
        monkeypatch.setattr(cache_mounts, "_locked_files", lambda root: None)
    mounts = CacheMountManager(tmp_path / "cm")
    first = mounts.acquire("go-build", sharing="private", description="first")
    second = mounts.acquire("go-build", sharing="private")  # instance 0 is taken: a new one
    (first.path / "f").write_bytes(b"x" * 10000)
    records = {r.path.name: r for r in mounts.records()}
    assert set(records) == {"0", "1"} and all(r.in_use for r in records.values())
    assert records["0"].description == "first" and records["0"].usage_count == 1
    assert records["0"].size >= 10000
    assert records["1"].description == 'cache mount with id "go-build"'
    assert not mounts.remove(records["0"].id)  # held: stays
    first.release()
    # released: free, and the next private user gets it back
    assert [r.in_use for r in mounts.records() if r.path.name == "0"] == [False]
    again = mounts.acquire("go-build", sharing="private")
    assert again.path == first.path
    again.release()
    assert mounts.remove(records["0"].id)
    assert [r.path.name for r in mounts.records()] == ["1"]
    second.release()
    fresh = mounts.acquire("go-build", sharing="private")  # instance 0 again, empty, new id
    assert fresh.path.name == "0" and not (fresh.path / "f").exists()
    assert {r.id for r in mounts.records()} & {records["0"].id} == set()
    fresh.release()
