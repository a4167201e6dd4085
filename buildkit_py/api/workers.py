"""What a builder says about the machine that runs its builds (``bkpy builder inspect``,
multi-node platform routing)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    platforms: list[str]  # native first, then emulated
    emulated: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    version: str = ""
