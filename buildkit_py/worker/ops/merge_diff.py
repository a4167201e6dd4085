"""MergeOp and DiffOp on layer chains.

A merge stacks the layers of each input on the first one, so ``COPY --link``
results keep their own layer and stay reusable when the base changes. A diff
of an ancestor and a descendant is the descendant's layers above the ancestor;
otherwise the two trees are compared file by file.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence

from buildkit_py.errors import BuildError
from buildkit_py.llb import ops_pb2
from buildkit_py.snapshot import diff as tree_diff
from buildkit_py.snapshot import write_layer_tar
from buildkit_py.solver.worker import CacheMap, OpContext, Result
from buildkit_py.worker.ops.base import OpWorker
from buildkit_py.worker.ops.common import op_cache_digest, unwrap
from buildkit_py.worker.results import SnapshotResult


def _snapshot(res: object, what: str) -> SnapshotResult:
    if not isinstance(res, SnapshotResult):
        raise BuildError(f"{what}: a local source cannot be merged or diffed directly")
    return res


class MergeHandler:
    cache_map_is_cheap = True  # pure hashing: no thread-pool trip for the key

    def __init__(self, worker: OpWorker, op: ops_pb2.Op) -> None:
        self.worker = worker
        self.op = op

    def cache_map(self, ctx: OpContext) -> CacheMap:
        return CacheMap(op_cache_digest(self.op))

    def cancel(self) -> None:
        pass

    def exec(self, ctx: OpContext, inputs: Sequence[Result]) -> list[Result]:
        ins = [unwrap(r) for r in inputs]
        parts: list[SnapshotResult] = []
        for mi in self.op.merge.inputs:
            if mi.input >= 0:
                res = _snapshot(ins[mi.input], "merge")
                if res.key is not None:
                    parts.append(res)
        if not parts:
            return [SnapshotResult(None)]
        current = parts[0]
        for part in parts[1:]:
            current = self.worker.snapshots.rebase(current, self.worker.snapshots.chain(part))
        return [current]


class DiffHandler:
    cache_map_is_cheap = True  # pure hashing: no thread-pool trip for the key

    def __init__(self, worker: OpWorker, op: ops_pb2.Op) -> None:
        self.worker = worker
        self.op = op

    def cache_map(self, ctx: OpContext) -> CacheMap:
        return CacheMap(op_cache_digest(self.op))

    def cancel(self) -> None:
        pass

    def exec(self, ctx: OpContext, inputs: Sequence[Result]) -> list[Result]:
        ins = [unwrap(r) for r in inputs]
        li, ui = self.op.diff.lower.input, self.op.diff.upper.input
        lower = _snapshot(ins[li], "diff") if li >= 0 else SnapshotResult(None)
        upper = _snapshot(ins[ui], "diff") if ui >= 0 else SnapshotResult(None)
        snaps = self.worker.snapshots
        if upper.key is None:
            return [SnapshotResult(None)]
        upper_chain = snaps.chain(upper)
        lower_chain = snaps.chain(lower) if lower.key else []
        if upper_chain[: len(lower_chain)] == lower_chain:
            return [snaps.rebase(SnapshotResult(None), upper_chain[len(lower_chain):])]
        with snaps.read(lower) as lower_dir, snaps.read(upper) as upper_dir, \
                tempfile.TemporaryFile(dir=snaps.tmp_root) as tar:
            write_layer_tar(tree_diff(lower_dir, upper_dir), upper_dir, tar)
            tar.seek(0)
            # applied to an unmounted snapshot, deletions stay whiteouts in the layer
            return [snaps.layer_from_tar(None, tar)]
