"""The one client interface every builder (embedded, daemon, remote, multi-node) offers.

Kept free of grpc and of the builder core so ``bkpy build`` on the embedded builder
starts fast; implementations import what they need when used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from buildkit_py.api.outcome import BuildOutcome
    from buildkit_py.api.request import BuildRequest
    from buildkit_py.api.usage import PruneOptions, UsageItem
    from buildkit_py.api.workers import WorkerInfo
    from buildkit_py.solver.progress import ProgressSink


class BuilderClient(Protocol):
    """What the CLI needs from a builder."""

    def build(self, req: BuildRequest, progress: ProgressSink) -> BuildOutcome: ...

    def disk_usage(self, verify: bool = False) -> list[UsageItem]:
        """``verify``: also hash every blob and add a ``corrupt`` item per bad one."""
        ...

    def prune(self, opts: PruneOptions) -> Iterator[UsageItem]: ...

    def workers(self) -> list[WorkerInfo]: ...

    def close(self) -> None: ...
