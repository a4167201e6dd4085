"""What ``du`` and ``prune`` exchange: one record of a builder's disk usage and the
limits of a prune. The same values whether the builder runs in-process or in ``bkpyd``."""

from __future__ import annotations

from dataclasses import dataclass


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
    # only records that pass every filter go (api/prune_filters.py, e.g. "type==regular")
    filters: tuple[str, ...] = ()
