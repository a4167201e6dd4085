"""The builder's worker: turns LLB vertices into op handlers over real snapshots.

It owns the snapshotter, the executor (containers through the OCI runtime), the
content-checksum memo and, for image sources, the content store and registry
access. The solver only sees :class:`~buildkit_py.solver.worker.OpHandler`\\ s.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buildkit_py import rootpath
from buildkit_py.errors import BuildError
from buildkit_py.frontend.dockerfile.dockerignore import filepath_match
from buildkit_py.llb import ops_pb2
from buildkit_py.snapshot import (
    DBSnapshotter,
    SnapshotNotFoundError,
    open_snapshotter,
)
from buildkit_py.solver.vertex import Vertex
from buildkit_py.solver.worker import OpContext, OpHandler, Result
from buildkit_py.worker import fileops, untar
from buildkit_py.worker.checksum import ChecksumCache
from buildkit_py.worker.ops.common import scoped_keep
from buildkit_py.worker.ops.exec_op import ExecHandler
from buildkit_py.worker.ops.file_op import FileHandler
from buildkit_py.worker.ops.merge_diff import DiffHandler, MergeHandler
from buildkit_py.worker.ops.source_local import LocalSourceHandler
from buildkit_py.worker.results import SCRATCH_ID, LocalResult, SnapshotResult
from buildkit_py.worker.session import BuildSession
from buildkit_py.worker.snapshots import Snapshots

if TYPE_CHECKING:
    from buildkit_py.executor import Executor
    from buildkit_py.executor.cdi import CDIRegistry


class BuilderWorker:
    def __init__(self, root: Path, *, runtime: str = "bkpy-runc",
                 session: BuildSession | None = None,
                 image_source: Callable[[BuilderWorker, ops_pb2.Op], OpHandler] | None = None,
                 cdi: CDIRegistry | None = None) -> None:
        self.root = Path(root)
        self.sn: DBSnapshotter = open_snapshotter(self.root / "snapshots")
        self.snapshots = Snapshots(self.sn, self.root / "tmp")
        self._runtime = runtime
        self._executor: Executor | None = None
        self._executor_lock = threading.Lock()
        self.checksums = ChecksumCache(self.root / "checksums.db")
        self.session = session or BuildSession()
        self._image_source = image_source
        self.cdi = cdi  # RUN --device; None: CDI disabled

    @property
    def executor(self) -> Executor:
        """Created when the first step runs: a fully cached build never needs it."""
        with self._executor_lock:
            if self._executor is None:
                from buildkit_py.executor import Executor

                self._executor = Executor(self._runtime, self.root / "executor")
            return self._executor

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
        if kind == "exec":
            return ExecHandler(self, op)
        if kind == "file":
            return FileHandler(self, op)
        if kind == "merge":
            return MergeHandler(self, op)
        if kind == "diff":
            return DiffHandler(self, op)
        if kind == "source":
            ident = op.source.identifier
            scheme = ident.split("://", 1)[0]
            if scheme == "local":
                return LocalSourceHandler(self, op)
            if scheme in ("docker-image", "oci-layout") and self._image_source is not None:
                return self._image_source(self, op)
            raise BuildError(f"source {ident!r} is not supported by this builder yet",
                             hint="use FROM scratch, a stage, or a local context")
        raise BuildError(f"unknown op kind {kind!r} in the build definition")

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

    def ssh_socket(self, ctx: OpContext, sid: str) -> Path | None:
        for s in self._sessions(ctx):
            if sid in s.ssh_sockets:
                return s.ssh_sockets[sid]
        return None

    # helpers for handlers -------------------------------------------------------

    @staticmethod
    def match(pattern: str, name: str) -> bool:
        return filepath_match(pattern, name)

    def glob(self, root: str, pattern: str) -> list[str]:
        return fileops._glob(root, pattern, filepath_match)

    @contextlib.contextmanager
    def filtered_copy(self, src: LocalResult, selector: str) -> Iterator[Path]:
        """A temporary copy of what a filtered local source exposes under ``selector``."""
        tmp = Path(tempfile.mkdtemp(prefix="ctx-", dir=self.snapshots.tmp_root))
        try:
            opts = fileops.CopyOptions(keep=scoped_keep(src.keep, selector or "/", None),
                                       allow_wildcard=False)
            fileops.copy(str(src.path), selector or "/", str(tmp), "/", opts)
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def copy_local_into(self, src: LocalResult, dest: Path) -> None:
        opts = fileops.CopyOptions(keep=src.keep, allow_wildcard=False)
        fileops.copy(str(src.path), "/", str(dest), "/", opts)

    def try_unpack(self, src_root: str, src: str, *, root: str, dest: str,
                   opts: fileops.CopyOptions) -> bool:
        """ADD's archive auto-extraction: a local tar (any compression) is unpacked."""
        host = rootpath.resolve(src_root, src)
        if not untar.is_archive(host):
            return False
        owner = (opts.owner.uid, opts.owner.gid) if opts.owner else None
        untar.untar(host, root, dest, owner=owner, timestamp=opts.timestamp)
        return True

    def info(self) -> dict[str, Any]:
        return {"snapshotter": self.sn.name, "runtime": self._runtime}
