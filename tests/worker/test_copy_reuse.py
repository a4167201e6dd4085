"""A COPY that missed the cache links the unchanged files of its last layer.

Real solver, worker and snapshotters (overlayfs and the copying one): the layer a
reusing copy commits must export to the same tar bytes as a from-scratch copy,
and no layer's files may change when a later layer or step writes over them.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildkit_py import llb
from buildkit_py.snapshot import Compression
from buildkit_py.solver.cache import CacheManager
from buildkit_py.solver.solver import Solver, SolveResult
from buildkit_py.worker.results import SnapshotResult
from buildkit_py.worker.session import BuildSession
from buildkit_py.worker.worker import BuilderWorker

BUSYBOX = Path("/var/cache/bkpy-test/busybox-amd64")
OLD = 1_600_000_000  # source mtimes, kept below the export clamp
EPOCH = 1_700_000_000  # clamps the times a copy gives the directories it creates
N_DIRS, PER_DIR = 6, 50  # 300 files: above copy_reuse.MIN_FILES


def _fill(ctx: Path) -> None:
    tree = ctx / "tree"
    for d in range(N_DIRS):
        sub = tree / f"d{d}"
        sub.mkdir(parents=True)
        for f in range(PER_DIR):
            p = sub / f"f{f:03}.txt"
            p.write_text(f"file {d}/{f}\n" * (f + 1))
            if f % 7 == 0:
                p.chmod(0o755)
    os.link(tree / "d0" / "f001.txt", tree / "d0" / "hard.txt")
    (tree / "d1" / "link").symlink_to("f000.txt")
    (tree / "empty").write_bytes(b"")
    os.setxattr(tree / "d2" / "f002.txt", "user.note", b"kept")
    _age(ctx)


def _age(ctx: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(ctx):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (OLD, OLD), follow_symlinks=False)


def _change(ctx: Path) -> None:
    tree = ctx / "tree"
    with open(tree / "d0" / "f003.txt", "a") as f:
        f.write("changed\n")
    (tree / "d1" / "f004.txt").unlink()
    (tree / "d3" / "new.txt").write_text("new\n")
    (tree / "d4" / "f005.txt").chmod(0o600)
    (tree / "d5" / "f006.txt").write_text("x" * 62 + "\n")  # same size as before
    _age(ctx)
    os.utime(tree / "d2" / "f010.txt", (OLD + 5, OLD + 5))  # mtime only: a new file


@pytest.fixture(params=["overlayfs", "native"])
def worker(request: pytest.FixtureRequest, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[BuilderWorker]:
    monkeypatch.setenv("BKPY_SNAPSHOTTER", request.param)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    shutil.copy(BUSYBOX, ctx / "busybox")
    _fill(ctx)
    w = BuilderWorker(tmp_path / "state", runtime="runc",
                      session=BuildSession(local_dirs={"context": ctx}))
    yield w
    w.close()


def _ctx(worker: BuilderWorker) -> Path:
    return worker.session.local_dirs["context"]


def _base() -> llb.State:
    ctx = llb.local("context")
    return (llb.scratch()
            .file(llb.copy(ctx, "busybox", "/bin/busybox", create_dest_path=True))
            .run(["/bin/busybox", "--install", "-s", "/bin"]).root())


def _copy_state() -> llb.State:
    ctx = llb.local("context")
    return _base().file(llb.copy(ctx, "/tree", "/data/", dir_copy_contents=True,
                                 create_dest_path=True, follow_symlinks=True))


def _solve(worker: BuilderWorker, state: llb.State, cache_dir: Path) -> SolveResult:
    with Solver(worker, CacheManager(cache_dir)) as solver:
        return solver.solve(state.marshal())


def _key(result: SolveResult) -> str:
    assert result.ref is not None
    inner = result.ref.result
    assert isinstance(inner, SnapshotResult) and inner.key is not None
    return inner.key


def _tar(worker: BuilderWorker, key: str) -> bytes:
    out = io.BytesIO()
    worker.sn.export_layer(key, out, compression=Compression.UNCOMPRESSED,
                           source_date_epoch=EPOCH)
    return out.getvalue()


def _own(worker: BuilderWorker, key: str) -> Path:
    return worker.sn.layer_dir(key)


def test_reused_layer_exports_the_same_bytes_as_a_fresh_copy(
        worker: BuilderWorker, tmp_path: Path) -> None:
    first = _solve(worker, _copy_state(), tmp_path / "cache")
    old_key = _key(first)
    old = _own(worker, old_key)
    old_changed = (old / "data/d0/f003.txt").read_bytes()
    _change(_ctx(worker))

    reused = _solve(worker, _copy_state(), tmp_path / "cache")
    new = _own(worker, _key(reused))
    # unchanged files are the earlier inodes; changed ones (content, mode, mtime) are not
    same = os.lstat(new / "data/d0/f000.txt")
    assert same.st_ino == os.lstat(old / "data/d0/f000.txt").st_ino
    for rel in ("d0/f003.txt", "d4/f005.txt", "d5/f006.txt", "d2/f010.txt",
                "d2/f002.txt", "d0/hard.txt"):
        assert os.lstat(new / "data" / rel).st_ino != os.lstat(old / "data" / rel).st_ino
    assert not (new / "data/d1/f004.txt").exists()
    assert (new / "data/d3/new.txt").read_text() == "new\n"
    assert (old / "data/d0/f003.txt").read_bytes() == old_changed
    assert os.getxattr(new / "data/d2/f002.txt", "user.note") == b"kept"
    assert os.path.samefile(new / "data/d0/hard.txt", new / "data/d0/f001.txt")

    # the same content copied from scratch: another cache, no reuse records
    shutil.rmtree(worker.root / "copy-reuse")
    scratch = _solve(worker, _copy_state(), tmp_path / "cache2")
    assert _key(scratch) != _key(reused)
    assert os.lstat(_own(worker, _key(scratch)) / "data/d0/f000.txt").st_ino != same.st_ino
    assert _tar(worker, _key(reused)) == _tar(worker, _key(scratch))

    # removing the earlier layer leaves the reusing one whole
    for res in (first, reused, scratch):
        res.release()
    worker.sn.remove(old_key)
    assert (new / "data/d0/f000.txt").read_text() == "file 0/0\n"
    assert os.lstat(new / "data/d0/f000.txt").st_nlink == 1


def test_writes_above_a_reused_layer_leave_both_layers_intact(
        worker: BuilderWorker, tmp_path: Path) -> None:
    first = _solve(worker, _copy_state(), tmp_path / "cache")
    old = _own(worker, _key(first))
    (_ctx(worker) / "tree" / "d0" / "f003.txt").write_text("other\n")
    _age(_ctx(worker))
    state = _copy_state().run(
        ["/bin/sh", "-c", "echo more >> /data/d0/f000.txt; chmod 600 /data/d1/f001.txt;"
                          " cat /data/d0/f000.txt > /seen"]).root()
    res = _solve(worker, state, tmp_path / "cache")
    with worker.snapshots.read(res.ref.result) as root:  # type: ignore[union-attr, arg-type]
        assert (root / "seen").read_text() == "file 0/0\nmore\n"
    copy_layer = worker.snapshots.chain(res.ref.result)[-2]  # type: ignore[union-attr, arg-type]
    for layer in (old, _own(worker, copy_layer)):
        assert (layer / "data/d0/f000.txt").read_text() == "file 0/0\n"
        assert os.lstat(layer / "data/d1/f001.txt").st_mode & 0o777 == 0o644
    assert os.path.samefile(old / "data/d0/f000.txt",
                            _own(worker, copy_layer) / "data/d0/f000.txt")
    first.release()
    res.release()


def test_small_copies_keep_no_records(worker: BuilderWorker, tmp_path: Path) -> None:
    ctx = llb.local("context")
    state = _base().file(llb.copy(ctx, "/tree/d0", "/small/", dir_copy_contents=True,
                                  create_dest_path=True))
    _solve(worker, state, tmp_path / "cache").release()
    assert not list((worker.root / "copy-reuse").glob("*.json"))
    _solve(worker, _copy_state(), tmp_path / "cache").release()
    assert len(list((worker.root / "copy-reuse").glob("*.json"))) == 1
