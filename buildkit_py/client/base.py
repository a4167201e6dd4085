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
    # regular | content; corrupt: a blob whose bytes do not match its digest (``id``),
    # ``description`` saying what they hash to; image: an image name dropped with one
    record_type: str = "regular"

    @property
    def reclaimable(self) -> bool:
        return not self.in_use


@dataclass(frozen=True)
class PruneOptions:
    all: bool = False
    keep_duration: float | None = None  # seconds: keep what was used more recently
    keep_storage: int | None = None  # bytes: then drop least recently used above this
    corrupt: bool = False  # only drop corrupted blobs and what refers to them


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

    def disk_usage(self, verify: bool = False) -> list[UsageItem]:
        """``verify``: also hash every blob and add a ``corrupt`` item per bad one."""
        ...

    def prune(self, opts: PruneOptions) -> Iterator[UsageItem]: ...

    def workers(self) -> list[WorkerInfo]: ...

    def close(self) -> None: ...
