"""Pieces every op handler uses: the op's own cache digest, content digests of inputs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from buildkit_py.llb import ops_pb2
from buildkit_py.solver.worker import ContentDigestFunc, Result
from buildkit_py.worker.checksum import Checksummer
from buildkit_py.worker.results import LocalResult, SnapshotResult

if TYPE_CHECKING:
    from buildkit_py.worker.worker import BuilderWorker


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


def content_digest(worker: BuilderWorker, *, follow: bool = True,
                   keep: Callable[[str], bool] | None = None,
                   wildcard: bool = False) -> ContentDigestFunc:
    """A ``compute_digest`` for a content-keyed input (COPY source, read-only mount)."""

    def compute(result: Result, selectors: Sequence[str]) -> str:
        res = unwrap(result)
        local_keep = res.keep if isinstance(res, LocalResult) else None
        summer = Checksummer(worker.checksums, zero_owner=isinstance(res, LocalResult))
        h = hashlib.sha256(b"bkpy-content-v1")
        with worker.snapshots.read(res) as root:
            for sel in selectors or ("/",):
                if wildcard:
                    matches = worker.glob(str(root), sel)
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
        worker.checksums.flush()
        return "sha256:" + h.hexdigest()

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
