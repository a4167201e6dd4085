"""The one client interface every builder (embedded, daemon, remote, multi-node) offers.

Kept free of grpc and of the builder core so ``bkpy build`` on the embedded builder
starts fast; implementations import what they need when used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from buildkit_py.builder.core import BuildOutcome
    from buildkit_py.client.request import BuildRequest
    from buildkit_py.config import BuilderConfig
    from buildkit_py.solver.progress import ProgressEvent

    ProgressSink = Callable[[ProgressEvent], None]


@dataclass(frozen=True)
class UsageItem:
    """One record of ``bkpy du``: a cache result, or the content store as a whole."""

    id: str
    size: int
    created: float
    last_used: float
    description: str
    usage_count: int
    in_use: bool
    record_type: str = "regular"  # regular | content

    @property
    def reclaimable(self) -> bool:
        return not self.in_use


@dataclass(frozen=True)
class PruneOptions:
    all: bool = False
    keep_duration: float | None = None  # seconds: keep what was used more recently
    keep_storage: int | None = None  # bytes: then drop least recently used above this


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    platforms: list[str]  # native first, then emulated
    emulated: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    version: str = ""


class BuilderClient(Protocol):
    """What the CLI needs from a builder."""

    def build(self, req: BuildRequest, progress: ProgressSink) -> BuildOutcome: ...

    def disk_usage(self) -> list[UsageItem]: ...

    def prune(self, opts: PruneOptions) -> Iterator[UsageItem]: ...

    def workers(self) -> list[WorkerInfo]: ...

    def close(self) -> None: ...


class EmbeddedBuilderClient:
    """The builder core in this process, holding the state directory's lock per call."""

    def __init__(self, config: BuilderConfig) -> None:
        self.config = config

    def build(self, req: BuildRequest, progress: ProgressSink) -> BuildOutcome:
        from buildkit_py.client.embedded import EmbeddedClient

        return EmbeddedClient(self.config).build(req, progress)

    def disk_usage(self) -> list[UsageItem]:
        from buildkit_py.builder.core import Builder
        from buildkit_py.client.embedded import _state_lock
        from buildkit_py.control.gc import disk_usage

        with _state_lock(self.config.root), Builder(self.config) as builder:
            return disk_usage(builder)

    def prune(self, opts: PruneOptions) -> Iterator[UsageItem]:
        from buildkit_py.builder.core import Builder
        from buildkit_py.client.embedded import _state_lock
        from buildkit_py.control.gc import prune

        with _state_lock(self.config.root), Builder(self.config) as builder:
            yield from prune(builder, opts)

    def workers(self) -> list[WorkerInfo]:
        from buildkit_py.control.gc import local_worker_info

        return [local_worker_info(self.config)]

    def close(self) -> None:
        pass
