"""Pieces every op handler uses: the op's own cache digest, content digests of inputs,
globbing and copying out of a local context."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from buildkit_py.frontend.dockerfile.dockerignore import filepath_match
from buildkit_py.llb import ops_pb2
from buildkit_py.snapshot import SnapshotNotFoundError
from buildkit_py.solver.worker import ContentDigestFunc, Result
from buildkit_py.worker import fileops
from buildkit_py.worker.checksum import (
    DIGEST_VERSION,
    Checksummer,
    FileDigests,
    UnmemoizedDigests,
)
from buildkit_py.worker.ops.base import OpWorker
from buildkit_py.worker.results import LocalResult, SnapshotResult


def op_cache_digest(op: ops_pb2.Op, extra: bytes = b"") -> str:
    """The op body and platform without its input digests (inputs enter keys separately)."""
    stripped = ops_pb2.Op()
    stripped.CopyFrom(op)
    for inp in stripped.inputs:
        inp.digest = ""
    h = hashlib.sha256(b"bkpy-op-v1\0")
    h.update(stripped.SerializeToString(deterministic=True))
    h.update(extra)
    return "sha256:" + h.hexdigest()


def unwrap(result: Result) -> SnapshotResult | LocalResult:
    """The worker's own result behind a solver reference."""
    inner = getattr(result, "result", result)
    if not isinstance(inner, SnapshotResult | LocalResult):
        raise TypeError(f"unexpected result type {type(inner).__name__}")
    return inner


def memoized_snapshot_digest(worker: OpWorker, res: SnapshotResult, spec: str,
                             compute: Callable[[], str]) -> str:
    """``compute()`` (a content digest of a selection of ``res``), memoized per snapshot.

    A committed snapshot never changes, so it is mounted and checksummed once; a no-op
    rebuild reads the digest back. ``spec`` must name everything besides the tree that
    the digest depends on. The memo is keyed by the snapshot's identity, which changes
    when a key is reused after a prune.
    """
    ident = worker.sn.identity(res.key) if res.key else None
    if ident is None:  # scratch or uncommitted: nothing to remember it by
        return compute()
    assert res.key is not None
    hit = worker.checksums.selection(res.key, ident, spec)
    if hit is not None:
        return hit
    digest = compute()
    worker.checksums.remember_selection(res.key, ident, spec, digest)

    def alive(snapshot: str, known: str) -> bool:
        try:
            return worker.sn.identity(snapshot) == known
        except SnapshotNotFoundError:
            return False

    worker.checksums.sweep_selections(alive)
    return digest


def content_digest(worker: OpWorker, *, follow: bool = True,
                   keep: Callable[[str], bool] | None = None,
                   wildcard: bool = False) -> ContentDigestFunc:
    """A ``compute_digest`` for a content-keyed input (COPY source, read-only mount)."""

    def compute(result: Result, selectors: Sequence[str]) -> str:
        res = unwrap(result)
        if isinstance(res, SnapshotResult) and keep is None:
            spec = hashlib.sha256(json.dumps(
                [f"bkpy-mount-selection-v{DIGEST_VERSION}", list(selectors), follow, wildcard]
            ).encode()).hexdigest()
            return memoized_snapshot_digest(worker, res, spec, lambda: digest_of(res, selectors))
        return digest_of(res, selectors)

    def digest_of(res: SnapshotResult | LocalResult, selectors: Sequence[str]) -> str:
        local = isinstance(res, LocalResult)
        local_keep = res.keep if isinstance(res, LocalResult) else None
        # file rows are remembered by path: only a local context's paths outlive the build
        files: FileDigests = worker.checksums if local else UnmemoizedDigests()
        summer = Checksummer(files, zero_owner=local, keep_trees=local)
        h = hashlib.sha256(b"bkpy-content-v1")
        with worker.snapshots.read(res) as root:
            for sel in selectors or ("/",):
                if wildcard:
                    matches = glob(str(root), sel)
                else:
                    matches = [sel]
                for m in matches:
                    rel = m.strip("/")
                    if local_keep is not None and rel and not local_keep(rel):
                        digest = "excluded"
                    else:
                        digest = summer.selection(str(root), m, follow=follow,
                                                  keep=scoped_keep(local_keep, m, keep))
                    h.update(f"\0{sel}\0{m}\0{digest}".encode())
        digest = "sha256:" + h.hexdigest()
        if isinstance(res, LocalResult):
            worker.checksums.flush()
            # the per-path map that lets a later miss name the changed files
            slot = json.dumps([str(res.path), list(selectors), follow, wildcard])
            worker.checksums.remember_manifest(slot, digest, summer.manifest)
        return digest

    return compute


def scoped_keep(root_keep: Callable[[str], bool] | None, selected: str,
                rel_keep: Callable[[str], bool] | None) -> Callable[[str], bool] | None:
    """One filter for paths below ``selected``: ``root_keep`` sees root-relative paths
    (a local context's .dockerignore), ``rel_keep`` selection-relative ones (COPY --exclude)."""
    base = selected.strip("/")
    if root_keep is None:
        return rel_keep
    if rel_keep is None:
        return lambda p: root_keep(f"{base}/{p}" if base else p)
    return lambda p: root_keep(f"{base}/{p}" if base else p) and rel_keep(p)


def glob(root: str, pattern: str) -> list[str]:
    """Container paths under ``root`` matching ``pattern`` (Go filepath.Match per part)."""
    return fileops.glob(root, pattern, filepath_match)


@contextlib.contextmanager
def filtered_copy(tmp_root: Path, src: LocalResult, selector: str) -> Iterator[Path]:
    """A temporary copy (below ``tmp_root``) of what a filtered local source exposes
    under ``selector``."""
    tmp = Path(tempfile.mkdtemp(prefix="ctx-", dir=tmp_root))
    try:
        opts = fileops.CopyOptions(keep=scoped_keep(src.keep, selector or "/", None),
                                   allow_wildcard=False)
        fileops.copy(str(src.path), selector or "/", str(tmp), "/", opts)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def copy_local_into(src: LocalResult, dest: Path) -> None:
    """What a local source selects, copied into directory ``dest``."""
    opts = fileops.CopyOptions(keep=src.keep, allow_wildcard=False)
    fileops.copy(str(src.path), "/", str(dest), "/", opts)
