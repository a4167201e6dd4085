"""The selection memo of COPY sources that are committed snapshots: a no-op rebuild reads
the content digest from it without mounting, a new snapshot (even one reusing a removed
snapshot's key) is checksummed again, and rows of removed snapshots are swept."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from buildkit_py import llb
from buildkit_py.llb import ops_pb2
from buildkit_py.snapshot import mounted
from buildkit_py.solver.cache import CacheManager
from buildkit_py.solver.solver import Solver, SolveResult
from buildkit_py.solver.worker import OpContext
from buildkit_py.worker.checksum import ChecksumCache
from buildkit_py.worker.ops.file_op import FileHandler
from buildkit_py.worker.results import SnapshotResult
from buildkit_py.worker.worker import BuilderWorker


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[BuilderWorker]:
    w = BuilderWorker(tmp_path / "state", runtime="runc")
    yield w
    w.close()


@pytest.fixture
def views(worker: BuilderWorker, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Keys of the snapshots mounted read-only from now on (the real ``view`` still runs)."""
    seen: list[str] = []
    real = worker.sn.view

    def view(key: str, parent: str | None = None, labels: Any = None) -> Any:
        seen.append(key)
        return real(key, parent, labels)

    monkeypatch.setattr(worker.sn, "view", view)
    return seen


def _stage(data: str) -> llb.State:
    return llb.scratch().file(llb.mkdir("/data", make_parents=True)
                              .mkfile("/data/a.txt", data=data)
                              .mkfile("/data/b.log", data="log\n"))


def _final(stage: llb.State, **opts: Any) -> llb.State:
    return llb.scratch().file(llb.copy(stage, "/data", "/out", create_dest_path=True, **opts))


def _solve(worker: BuilderWorker, state: llb.State, tmp_path: Path) -> SolveResult:
    """One build with a fresh solver (as a new ``bkpy build`` would) on the shared cache."""
    with Solver(worker, CacheManager(tmp_path / "solver")) as solver:
        return solver.solve(state.marshal())


def _read(worker: BuilderWorker, res: SolveResult, path: str) -> str:
    assert res.ref is not None
    inner = res.ref.result
    assert isinstance(inner, SnapshotResult)
    with worker.snapshots.read(inner) as root:
        return (root / path.lstrip("/")).read_text()


def test_noop_rebuild_of_a_copy_from_a_stage_mounts_nothing(
        worker: BuilderWorker, views: list[str], tmp_path: Path) -> None:
    state = _final(_stage("one\n"))
    first = _solve(worker, state, tmp_path)
    first.release()
    assert views, "the first build checksums and copies from a mounted stage"
    views.clear()

    again = _solve(worker, state, tmp_path)
    again.release()
    assert views == []
    assert not again.ran


def test_changed_stage_still_invalidates_the_copy(
        worker: BuilderWorker, views: list[str], tmp_path: Path) -> None:
    _solve(worker, _final(_stage("one\n")), tmp_path).release()
    changed = _solve(worker, _final(_stage("two\n")), tmp_path)
    try:
        assert len(changed.ran) == 2  # the stage and the copy above it
        assert _read(worker, changed, "/out/a.txt") == "two\n"
    finally:
        changed.release()


# A snapshot key reused for other content -----------------------------------------------


def _commit(worker: BuilderWorker, key: str, text: str, tmp_path: Path) -> None:
    active = f"{key}-active"
    mounts = worker.sn.prepare(active)
    with mounted(mounts, tmp_path) as root:
        (root / "data").mkdir()
        (root / "data" / "a.txt").write_text(text)
        (root / "data" / "b.log").write_text("log\n")
    worker.sn.commit(key, active)


def _copy_digest(worker: BuilderWorker, src: str = "/data", **opts: Any
                 ) -> Callable[[str], str]:
    """The content-digest function of a lone COPY ``src`` op (``opts``: copy fields)."""
    op = ops_pb2.Op()
    op.inputs.add(digest="sha256:" + "0" * 64, index=0)
    action = op.file.actions.add(input=-1, secondary_input=0, output=0)
    action.copy.src = src
    action.copy.dest = "/out"
    for name, value in opts.items():
        if isinstance(value, list):
            getattr(action.copy, name).extend(value)
        else:
            setattr(action.copy, name, value)
    dep = FileHandler(worker, op).cache_map(cast(OpContext, None)).deps[0]
    compute = dep.compute_digest
    assert compute is not None

    def digest(key: str) -> str:
        return compute(SnapshotResult(key), dep.selectors)

    return digest


def test_a_key_reused_after_removal_is_checksummed_again(
        worker: BuilderWorker, views: list[str], tmp_path: Path) -> None:
    digest = _copy_digest(worker)
    _commit(worker, "stage", "first\n", tmp_path)
    first = digest("stage")
    assert digest("stage") == first
    assert len(views) == 1  # the second digest came from the memo

    worker.sn.remove("stage")
    _commit(worker, "stage", "second\n", tmp_path)
    second = digest("stage")
    assert second != first
    assert len(views) == 2

    worker.sn.remove("stage")
    _commit(worker, "stage", "first\n", tmp_path)
    assert digest("stage") == first  # same content, same digest: only the memo row differs


def test_options_that_change_the_selection_are_part_of_the_memo_key(
        worker: BuilderWorker, views: list[str], tmp_path: Path) -> None:
    _commit(worker, "stage", "first\n", tmp_path)
    plain = _copy_digest(worker)("stage")
    variants = [
        _copy_digest(worker, exclude_patterns=["a.txt"])("stage"),
        _copy_digest(worker, include_patterns=["nothing*"])("stage"),
        _copy_digest(worker, src="/d*", allow_wildcard=True)("stage"),
        _copy_digest(worker, src="/data/a.txt")("stage"),
    ]
    assert len({plain, *variants}) == 5
    assert len(views) == 5  # none was answered by another's memo row
    # options the checksum ignores share the row: a different destination or mode
    assert _copy_digest(worker, dest="/elsewhere", mode=0o600)("stage") == plain
    assert len(views) == 5


def test_identity_of_a_snapshot_changes_with_its_record(
        worker: BuilderWorker, tmp_path: Path) -> None:
    _commit(worker, "k", "x\n", tmp_path)
    ident = worker.sn.identity("k")
    assert ident is not None and worker.sn.identity("k") == ident
    worker.sn.remove("k")
    _commit(worker, "k", "x\n", tmp_path)
    assert worker.sn.identity("k") != ident
    worker.sn.prepare("active")
    assert worker.sn.identity("active") is None  # mutable: no memo


# The memo table ---------------------------------------------------------------------------


def test_memo_rows_persist_and_match_only_their_identity(tmp_path: Path) -> None:
    db = tmp_path / "sums.db"
    cache = ChecksumCache(db)
    cache.remember_selection("snap", "1:1.0", "spec-a", "sha256:a")
    cache.remember_selection("snap", "1:1.0", "spec-b", "sha256:b")
    cache.close()

    cache = ChecksumCache(db)
    assert cache.selection("snap", "1:1.0", "spec-a") == "sha256:a"
    assert cache.selection("snap", "2:2.0", "spec-a") is None
    assert cache.selection("snap", "1:1.0", "spec-c") is None
    cache.remember_selection("snap", "2:2.0", "spec-a", "sha256:new")
    # the earlier snapshot's rows under that key are gone, not just shadowed
    assert cache.selection("snap", "1:1.0", "spec-b") is None
    assert cache.selection("snap", "2:2.0", "spec-a") == "sha256:new"
    cache.forget_snapshot("snap")
    assert cache.selection("snap", "2:2.0", "spec-a") is None
    cache.close()


def test_sweep_drops_rows_of_removed_snapshots_once_the_memo_is_big(tmp_path: Path) -> None:
    cache = ChecksumCache(tmp_path / "sums.db")
    for i in range(6):
        cache.remember_selection(f"s{i}", "1:1.0", "spec", f"sha256:{i}")

    def alive(snapshot: str, ident: str) -> bool:
        return snapshot in ("s0", "s3")

    assert cache.sweep_selections(alive, above=10) == 0
    assert cache.selection("s1", "1:1.0", "spec") == "sha256:1"
    assert cache.sweep_selections(alive, above=5) == 4
    assert cache.selection("s1", "1:1.0", "spec") is None
    assert cache.selection("s3", "1:1.0", "spec") == "sha256:3"
    cache.close()


def test_snapshot_files_leave_no_rows_in_the_file_memo(
        worker: BuilderWorker, tmp_path: Path) -> None:
    """Mount paths die with the mount: memoizing their files only grows the table."""
    digest = _copy_digest(worker)
    _commit(worker, "stage", "first\n", tmp_path)
    digest("stage")
    worker.checksums.flush()
    rows = worker.checksums._db.execute("SELECT count(*) FROM files").fetchone()[0]
    assert rows == 0
