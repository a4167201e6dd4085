"""What op handlers return: references to snapshots, or to a live local context."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SCRATCH_ID = "scratch"


@dataclass(frozen=True)
class SnapshotResult:
    """A committed snapshot (``key`` None: the empty filesystem)."""

    key: str | None
    size: int = 0

    @property
    def id(self) -> str:
        return f"snap:{self.key}" if self.key else SCRATCH_ID

    def release(self) -> None:
        """Snapshots stay in the store until pruned; nothing to free per reference."""


@dataclass(frozen=True)
class LocalResult:
    """A local context directory as selected by a local source (include/exclude).

    Never stored in the cache: consumers key on the content they read, and
    read it straight from the directory, so a no-op rebuild copies nothing.
    """

    path: Path
    keep: Callable[[str], bool] | None
    fingerprint: str

    @property
    def id(self) -> str:
        return f"local:{self.fingerprint}"

    @property
    def size(self) -> int:
        return 0

    def release(self) -> None:
        pass


WorkerResult = SnapshotResult | LocalResult
