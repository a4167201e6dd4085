"""The real worker under the real solver: LLB graphs on overlay snapshots and containers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from buildkit_py import llb
from buildkit_py.errors import BuildError
from buildkit_py.solver.cache import CacheManager
from buildkit_py.solver.solver import Solver, SolveResult
from buildkit_py.worker.results import SnapshotResult
from buildkit_py.worker.session import BuildSession
from buildkit_py.worker.worker import BuilderWorker

BUSYBOX = Path("/var/cache/bkpy-test/busybox-amd64")


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[BuilderWorker]:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "busybox").write_bytes(BUSYBOX.read_bytes())
    (ctx / "busybox").chmod(0o755)
    (ctx / "hello.txt").write_text("hello\n")
    (ctx / "ignored.txt").write_text("nope\n")
    w = BuilderWorker(tmp_path / "state", runtime="runc",
                      session=BuildSession(local_dirs={"context": ctx}))
    yield w
    w.close()


def _base() -> llb.State:
    ctx = llb.local("context", exclude=["ignored.txt"])
    return (llb.scratch()
            .file(llb.copy(ctx, "busybox", "/bin/busybox", create_dest_path=True))
            .run(["/bin/busybox", "--install", "-s", "/bin"]).root())


def _solve(worker: BuilderWorker, state: llb.State, tmp_path: Path) -> SolveResult:
    cache = CacheManager(tmp_path / "solver")
    with Solver(worker, cache) as solver:
        return solver.solve(state.marshal())


def _snap(result: SolveResult) -> SnapshotResult:
    assert result.ref is not None
    inner = result.ref.result
    assert isinstance(inner, SnapshotResult)
    return inner


def _read(worker: BuilderWorker, result: SolveResult, path: str) -> str:
    with worker.snapshots.read(_snap(result)) as root:
        return (root / path.lstrip("/")).read_text()


def test_exec_and_copy_build_layers(worker: BuilderWorker, tmp_path: Path) -> None:
    ctx = llb.local("context", exclude=["ignored.txt"])
    state = (_base().file(llb.copy(ctx, "hello.txt", "/app/", create_dest_path=True))
             .run(["/bin/sh", "-c", "cat /app/hello.txt > /out.txt; rm /bin/ls"]).root())
    res = _solve(worker, state, tmp_path)
    try:
        assert _read(worker, res, "/out.txt") == "hello\n"
        inner = _snap(res)
        with worker.snapshots.read(inner) as root:
            assert not (root / "bin" / "ls").exists()
            assert (root / "bin" / "cat").is_symlink()
        # one snapshot per op on the chain: copy busybox, install, copy hello, run
        assert len(worker.snapshots.chain(inner)) == 4
    finally:
        res.release()


def test_excluded_context_file_cannot_be_copied(worker: BuilderWorker, tmp_path: Path) -> None:
    ctx = llb.local("context", exclude=["ignored.txt"])
    state = llb.scratch().file(llb.copy(ctx, "ignored.txt", "/x"))
    with pytest.raises(BuildError, match="not found"):
        _solve(worker, state, tmp_path)


def test_failing_exec_reports_exit_code(worker: BuilderWorker, tmp_path: Path) -> None:
    state = _base().run(["/bin/sh", "-c", "echo boom >&2; exit 7"]).root()
    with pytest.raises(BuildError) as err:
        _solve(worker, state, tmp_path)
    assert "exit code: 7" in str(err.value)


def test_merge_stacks_an_independent_layer(worker: BuilderWorker, tmp_path: Path) -> None:
    layer = llb.scratch().file(llb.mkfile("/linked.txt", 0o600, b"L"))
    state = llb.merge([_base(), layer])
    res = _solve(worker, state, tmp_path)
    try:
        assert _read(worker, res, "/linked.txt") == "L"
        inner = _snap(res)
        with worker.snapshots.read(inner) as root:
            assert (root / "bin" / "busybox").read_bytes()[:4] == b"\x7fELF"
    finally:
        res.release()
