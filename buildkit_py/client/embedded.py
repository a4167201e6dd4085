"""The embedded client: a builder core inside the ``bkpy`` process.

Each command owns the state directory while it runs (:mod:`buildkit_py.builder.ownership`:
the lock ``bkpyd`` takes too); a second command on the same root waits for it, and the
first command after one that was killed cleans up what that one left.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from buildkit_py import deferred
from buildkit_py.api.outcome import BuildOutcome
from buildkit_py.api.request import BuildRequest
from buildkit_py.api.usage import PruneOptions, UsageItem
from buildkit_py.api.workers import WorkerInfo
from buildkit_py.builder.history_record import recorded
from buildkit_py.builder.history_store import HistoryStore
from buildkit_py.config import BuilderConfig
from buildkit_py.solver.progress import ProgressSink
from buildkit_py.worker.session import FailedStep

if TYPE_CHECKING:
    from buildkit_py.builder.core import Builder


@contextlib.contextmanager
def open_builder(config: BuilderConfig) -> Iterator[Builder]:
    """The builder core over ``config.root``, owned by this process for the block."""
    # reason: the builder core (~110 ms) loads only when a command opens it (not inspect)
    from buildkit_py.builder.ownership import open_owned_builder

    deferred.flush()  # a builder this process left open for later holds the root's lock

    with open_owned_builder(config, "bkpy", wait=True) as builder:
        yield builder


class EmbeddedClient:
    """The builder core in this process (the ``embedded`` driver), one call at a time."""

    def __init__(self, config: BuilderConfig) -> None:
        self.config = config

    def build(self, req: BuildRequest, progress: ProgressSink) -> BuildOutcome:
        with contextlib.ExitStack() as owned:
            builder = owned.enter_context(open_builder(self.config))

            def run(sink: ProgressSink, keep: Callable[[FailedStep], None] | None
                    ) -> BuildOutcome:
                session = builder.session_for(req)
                session.on_failed_step = keep
                if req.debug_shell:  # the shell runs on this process's terminal
                    session.debug_shell = list(req.debug_shell)
                return builder.build(req, sink, session)

            outcome = recorded(HistoryStore(self.config.root), self.config.history, req,
                               progress, run)
            # Built: closing the builder (its databases) and giving up the state directory
            # can wait for the answer of a served command (see deferred); the next command
            # on this root waits for the lock as it would have. A failure leaves the block
            # at once, its exception telling ownership whether the root needs recovery.
            deferred.later(owned.pop_all().close)
        return outcome

    def disk_usage(self, verify: bool = False) -> list[UsageItem]:
        # reason: du's code (~30 ms: snapshotter, solver cache) is not for builder inspect
        from buildkit_py.builder.gc import disk_usage

        with open_builder(self.config) as builder:
            return disk_usage(builder, verify)

    def prune(self, opts: PruneOptions) -> Iterator[UsageItem]:
        # reason: prune's code (~30 ms: snapshotter, solver cache) is not for builder inspect
        from buildkit_py.builder.gc import prune

        with open_builder(self.config) as builder:
            yield from prune(builder, opts)

    def workers(self) -> list[WorkerInfo]:
        # reason: ~1.5 ms (binfmt) on every embedded build; only builder inspect needs it
        from buildkit_py.builder.worker_info import local_worker_info

        return [local_worker_info(self.config)]

    def close(self) -> None:
        pass
