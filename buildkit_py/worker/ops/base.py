"""What an op handler may use of the worker, and the shape of a handler factory.

Handlers see the worker only through ``OpWorker``: the snapshots they read and write,
the content-checksum memo, the executor, and what the client lent the build (local
dirs, secrets, ssh agents, device aliases). ``BuilderWorker`` implements it and picks
a handler per op kind from its table; handlers (and the image source) never import
the worker itself, so the dependency points one way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from buildkit_py.llb import ops_pb2
from buildkit_py.snapshot import DBSnapshotter
from buildkit_py.solver.worker import OpContext, OpHandler
from buildkit_py.worker.checksum import ChecksumCache
from buildkit_py.worker.snapshots import Snapshots

if TYPE_CHECKING:
    from buildkit_py.executor.cdi import CDIRegistry
    from buildkit_py.executor.executor import Executor
    from buildkit_py.worker.session import BuildSession, FailedStep


class OpWorker(Protocol):
    """The worker as an op handler sees it."""

    @property
    def root(self) -> Path:
        """The worker's state directory (handlers keep their own indexes below it)."""
        ...

    @property
    def sn(self) -> DBSnapshotter:
        """The snapshotter (identities, layer directories, views)."""
        ...

    @property
    def snapshots(self) -> Snapshots:
        """Reading, writing and rebasing results as snapshots."""
        ...

    @property
    def checksums(self) -> ChecksumCache:
        """The content-checksum memo."""
        ...

    @property
    def executor(self) -> Executor:
        """Runs containers (created on first use)."""
        ...

    @property
    def cdi(self) -> CDIRegistry | None:
        """CDI devices for RUN --device; None when disabled."""
        ...

    def local_dir(self, ctx: OpContext, name: str) -> Path:
        """The directory a client lent under ``name``."""
        ...

    def secrets(self, ctx: OpContext) -> Callable[[str], bytes | None]:
        """Looks a secret up by id in the sessions of the builds sharing the op."""
        ...

    def device_alias(self, ctx: OpContext, name: str) -> str:
        """The device a build's ``--allow device=NAME,alias=X`` lets ``X`` stand for."""
        ...

    def ssh_socket(self, ctx: OpContext, sid: str) -> Path | None:
        """The ssh agent socket a client forwards under ``sid``."""
        ...

    def debug_session(self, ctx: OpContext) -> BuildSession | None:
        """The session of a build sharing the op that asked for the step debugger."""
        ...

    def failed_step_hooks(self, ctx: OpContext) -> list[Callable[[FailedStep], None]]:
        """Who keeps a failed RUN step for a post-mortem (the builds' histories)."""
        ...


HandlerFactory = Callable[[OpWorker, ops_pb2.Op], OpHandler]
"""Makes the handler of one op (a handler class, or the image source's factory)."""
