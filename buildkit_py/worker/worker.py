"""The builder's worker: turns LLB vertices into op handlers over real snapshots.

It owns the snapshotter, the executor (containers through the OCI runtime), the
content-checksum memo and what the client lent the build. The solver only sees
:class:`~buildkit_py.solver.worker.OpHandler`\\ s; the handlers see the worker only
through :class:`~buildkit_py.worker.ops.base.OpWorker`, and which handler serves an op
is the table below (the image source, which needs the content store and registry
access, is handed in by the builder).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buildkit_py.errors import BuildError
from buildkit_py.executor.cache_mounts import CacheMountManager
from buildkit_py.llb import ops_pb2
from buildkit_py.snapshot import (
    DBSnapshotter,
    SnapshotNotFoundError,
    open_snapshotter,
)
from buildkit_py.solver.vertex import Vertex
from buildkit_py.solver.worker import OpContext, OpHandler, Result
from buildkit_py.worker.checksum import ChecksumCache
from buildkit_py.worker.ops.base import HandlerFactory
from buildkit_py.worker.ops.exec_op import ExecHandler
from buildkit_py.worker.ops.file_op import FileHandler
from buildkit_py.worker.ops.merge_diff import DiffHandler, MergeHandler
from buildkit_py.worker.ops.source_local import LocalSourceHandler
from buildkit_py.worker.results import SCRATCH_ID, SnapshotResult
from buildkit_py.worker.session import BuildSession, FailedStep
from buildkit_py.worker.snapshots import Snapshots

if TYPE_CHECKING:
    from buildkit_py.executor.cdi import CDIRegistry
    from buildkit_py.executor.executor import Executor

# Op kind (the Op body's oneof) -> its handler; a source is routed by its identifier's
# scheme instead: ``local://`` here, the others (images, HTTP, Git) handed in by the
# builder, which owns what they need (content store, registry and network clients).
_OPS: dict[str, HandlerFactory] = {
    "exec": ExecHandler,
    "file": FileHandler,
    "merge": MergeHandler,
    "diff": DiffHandler,
}
_SOURCES: dict[str, HandlerFactory] = {"local": LocalSourceHandler}


class BuilderWorker:
    """Implements ``worker.ops.base.OpWorker`` for the handlers it makes."""

    def __init__(self, root: Path, *, runtime: str = "bkpy-runc",
                 session: BuildSession | None = None,
                 sources: Mapping[str, HandlerFactory] | None = None,
                 cdi: CDIRegistry | None = None) -> None:
        self.root = Path(root)
        self.sn: DBSnapshotter = open_snapshotter(self.root / "snapshots")
        self.snapshots = Snapshots(self.sn, self.root / "tmp")
        self._runtime = runtime
        self._executor: Executor | None = None
        self._executor_lock = threading.Lock()
        self.checksums = ChecksumCache(self.root / "checksums.db")
        self.session = session or BuildSession()
        self._sources = {**_SOURCES, **(sources or {})}  # identifier scheme -> handler
        self.cdi = cdi  # RUN --device; None: CDI disabled

    @property
    def executor(self) -> Executor:
        """Created when the first step runs: a fully cached build never needs it."""
        with self._executor_lock:
            if self._executor is None:
                # reason: the OCI executor (~10 ms) only when a step runs, not for cached builds
                from buildkit_py.executor.executor import Executor

                self._executor = Executor(self._runtime, self._executor_dir)
            return self._executor

    @property
    def _executor_dir(self) -> Path:
        return self.root / "executor"

    @property
    def cache_mounts(self) -> CacheMountManager:
        """The ``RUN --mount=type=cache`` directories, without starting the executor."""
        return CacheMountManager.under(self._executor_dir)

    def close(self) -> None:
        with self._executor_lock:
            if self._executor is not None:
                self._executor.close()
        self.checksums.close()
        self.snapshots.close()
        self.sn.close()

    # solver.Worker ----------------------------------------------------------

    def resolve_op(self, vertex: Vertex) -> OpHandler:
        op: ops_pb2.Op = vertex.op
        kind = op.WhichOneof("op")
        if kind == "source":
            ident = op.source.identifier
            source = self._sources.get(ident.split("://", 1)[0])
            if source is None:
                raise BuildError(f"source {ident!r} is not supported by this builder yet",
                                 hint="use FROM scratch, a stage, or a local context")
            return source(self, op)
        handler = _OPS.get(kind or "")
        if handler is None:
            raise BuildError(f"unknown op kind {kind!r} in the build definition")
        return handler(self, op)

    def load_result(self, result_id: str) -> Result | None:
        if result_id == SCRATCH_ID:
            return SnapshotResult(None)
        if not result_id.startswith("snap:"):
            return None
        key = result_id.removeprefix("snap:")
        try:
            usage = self.sn.usage(key)
        except SnapshotNotFoundError:
            return None
        return SnapshotResult(key, usage.size)

    # sessions -------------------------------------------------------------------

    def _sessions(self, ctx: OpContext) -> list[BuildSession]:
        found = [s for s in ctx.sessions() if isinstance(s, BuildSession)]
        return found or [self.session]

    def local_dir(self, ctx: OpContext, name: str) -> Path:
        """The directory a client lent under ``name`` (any build sharing the vertex)."""
        for s in self._sessions(ctx):
            if name in s.local_dirs:
                return s.local_dirs[name]
        return self._sessions(ctx)[0].local_dir(name)

    def secrets(self, ctx: OpContext) -> Callable[[str], bytes | None]:
        sessions = self._sessions(ctx)

        def lookup(sid: str) -> bytes | None:
            for s in sessions:
                value = s.secret(sid)
                if value is not None:
                    return value
            return None

        return lookup

    def device_alias(self, ctx: OpContext, name: str) -> str:
        """The device a build's ``--allow device=NAME,alias=X`` lets ``X`` stand for."""
        for s in self._sessions(ctx):
            if name in s.device_aliases:
                return s.device_aliases[name]
        return name

    def failed_step_hooks(self, ctx: OpContext) -> list[Callable[[FailedStep], None]]:
        """Who keeps a failed RUN step (the history of each build waiting on it)."""
        return [s.on_failed_step for s in self._sessions(ctx) if s.on_failed_step]

    def debug_session(self, ctx: OpContext) -> BuildSession | None:
        """The session of a build waiting on this vertex that asked for the step debugger."""
        for s in self._sessions(ctx):
            if s.debug_shell:
                return s
        return None

    def ssh_socket(self, ctx: OpContext, sid: str) -> Path | None:
        for s in self._sessions(ctx):
            if sid in s.ssh_sockets:
                return s.ssh_sockets[sid]
        return None

    def info(self) -> dict[str, Any]:
        return {"snapshotter": self.sn.name, "runtime": self._runtime}
