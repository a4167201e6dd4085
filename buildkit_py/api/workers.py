"""What a builder says about the machine that runs its builds (``bkpy builder inspect``,
multi-node platform routing)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GCRuleInfo:
    """One GC rule a worker applies, sizes in bytes (``builder inspect``'s ``GC Policy``)."""

    all: bool = False
    filters: tuple[str, ...] = ()
    keep_duration: float = 0.0  # seconds
    reserved_space: int = 0
    max_used_space: int = 0
    min_free_space: int = 0


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    platforms: list[str]  # native first, then emulated
    emulated: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    version: str = ""
    gc_rules: list[GCRuleInfo] = field(default_factory=list)  # in the order GC runs them
