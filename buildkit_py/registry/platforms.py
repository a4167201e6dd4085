"""Platforms (``os/arch[/variant]``): parsing, normalising and choosing from an index.

Matching follows containerd: os and architecture must be equal; a variant may fall back to a
lower compatible one (arm v8 runs v7, v6, v5; amd64 v3 runs v2, v1), the exact one preferred.
"""

from __future__ import annotations

import platform as _host
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from buildkit_py.errors import UsageError

_ARCH_ALIASES = {
    "x86_64": ("amd64", ""),
    "x86-64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "i386": ("386", ""),
    "i686": ("386", ""),
}

# Variants in ascending order of capability; an entry runs everything before it.
_VARIANT_LADDERS: dict[str, tuple[str, ...]] = {
    "arm": ("v5", "v6", "v7", "v8"),
    "arm64": ("v8", *(f"v8.{i}" for i in range(1, 10)), "v9", *(f"v9.{i}" for i in range(1, 6))),
    "amd64": ("v1", "v2", "v3", "v4"),
}
# The variant an empty one stands for.
_DEFAULT_VARIANT = {"arm": "v7", "arm64": "v8", "amd64": "v1"}


@dataclass(frozen=True)
class Platform:
    """A normalised platform; ``variant`` is empty when it is the architecture's default."""

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base

    def to_json(self) -> dict[str, str]:
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Platform:
        return normalize(
            str(data.get("os", "")), str(data.get("architecture", "")),
            str(data.get("variant", "") or ""),
        )

    def compatible_variants(self) -> tuple[str, ...]:
        """Variants this platform can run, best (its own) first."""
        ladder = _VARIANT_LADDERS.get(self.architecture)
        own = self.variant or _DEFAULT_VARIANT.get(self.architecture, "")
        if ladder is None or own not in ladder:
            return (own,)
        return tuple(reversed(ladder[: ladder.index(own) + 1]))

    def match_rank(self, other: Platform) -> int | None:
        """How well ``other`` (an index entry) suits this platform: 0 is exact; None = no."""
        if other.os != self.os or other.architecture != self.architecture:
            return None
        want = self.compatible_variants()
        have = other.variant or _DEFAULT_VARIANT.get(other.architecture, "")
        return want.index(have) if have in want else None


def normalize(os_name: str, arch: str, variant: str = "") -> Platform:
    """Normalise aliases like containerd: ``x86_64`` -> ``amd64``, ``arm64/v8`` -> ``arm64``."""
    os_name = os_name.lower()
    arch = arch.lower()
    variant = variant.lower()
    if arch in _ARCH_ALIASES:
        arch, alias_variant = _ARCH_ALIASES[arch]
        variant = variant or alias_variant
    if arch == "arm64" and variant in ("8", "v8"):
        variant = ""
    elif arch == "arm":
        if variant in ("", "7"):
            variant = "v7"
        elif variant in ("5", "6", "8"):
            variant = "v" + variant
    elif arch == "amd64" and variant in ("v1", "1"):
        variant = ""
    return Platform(os_name, arch, variant)


def parse_platform(text: str) -> Platform:
    """Parse ``os/arch[/variant]`` (or a bare ``arch``, taken as linux)."""
    parts = text.strip().split("/")
    if len(parts) == 1 and parts[0]:
        parts = ["linux", parts[0]]
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(
            f"invalid platform {text!r}: expected os/arch[/variant], e.g. linux/arm64"
        )
    return normalize(parts[0], parts[1], parts[2] if len(parts) == 3 else "")


def default_platform() -> Platform:
    """The platform of this machine."""
    machine = _host.machine()
    arch, variant = _ARCH_ALIASES.get(machine.lower(), (machine.lower(), ""))
    if arch.startswith("armv"):
        arch, variant = "arm", "v" + arch[4]
    return normalize(_host.system().lower() or "linux", arch, variant)


def as_platform(value: Platform | str | None) -> Platform:
    """Accept a Platform or its string form; None means this machine's platform."""
    if value is None:
        return default_platform()
    if isinstance(value, Platform):
        return value
    return parse_platform(value)


def choose(wanted: Platform, candidates: Iterable[Platform | None]) -> int | None:
    """Index of the best candidate for ``wanted`` (earliest among equals), or None."""
    best: tuple[int, int] | None = None
    for i, cand in enumerate(candidates):
        if cand is None:
            continue
        rank = wanted.match_rank(cand)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, i)
    return None if best is None else best[1]
