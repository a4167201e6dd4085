"""OCI platforms: parsing, normalisation, formatting and matching (containerd rules).

A leaf module (standard library only) shared by the frontend, solver, registry client
and exporters.

* :func:`parse_platform` accepts ``os[(osversion)][/arch[/variant]]`` or a lone OS or
  architecture, normalised as containerd does (``aarch64`` -> ``arm64``, ``arm64/v8``
  -> ``arm64``, ``x86_64`` -> ``amd64``, ``armhf`` -> ``arm/v7``, ``arm`` -> ``arm/v7``,
  ``i386`` -> ``386``, ``macos`` -> ``darwin``). ``""`` and ``"local"`` mean the host.
* :meth:`Platform.format` gives ``os/arch[/variant]``; :meth:`Platform.format_all`
  also shows the OS version (``windows(10.0.17763)/amd64``), as BuildKit's
  ``TARGETPLATFORM`` does; :meth:`Platform.for_path` gives ``linux_arm_v7`` for
  per-platform output directories.
* :func:`match_rank` / :func:`matches` / :func:`best_match` pick manifests from an
  index: same OS and architecture, exact variant preferred, else a lower compatible
  variant (arm v8 runs v7/v6/v5, amd64 v3 runs v2/v1).
"""

from __future__ import annotations

import platform as _host
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Final

from buildkit_py.errors import UsageError

__all__ = [
    "Platform",
    "best_match",
    "compatible_platforms",
    "host_platform",
    "match_rank",
    "matches",
    "normalize",
    "parse_platform",
    "parse_platform_list",
]

KNOWN_OS: Final = frozenset(
    "aix android darwin dragonfly freebsd hurd illumos ios js linux nacl netbsd openbsd "
    "plan9 solaris wasip1 windows zos".split()
)
KNOWN_ARCH: Final = frozenset(
    "386 amd64 amd64p32 arm armbe arm64 arm64be ppc64 ppc64le loong64 mips mipsle mips64 "
    "mips64le mips64p32 mips64p32le ppc riscv riscv64 s390 s390x sparc sparc64 wasm".split()
)

_COMPONENT: Final = re.compile(r"^[A-Za-z0-9_.-]+$")
_OS_PART: Final = re.compile(r"^([^()]*)(?:\((.*)\))?$")

_FORMAT_HINT: Final = "use os/arch[/variant], e.g. linux/amd64, linux/arm64, linux/arm/v7"


@dataclass(frozen=True, order=True)
class Platform:
    """An OCI platform; construct normalised values via :func:`parse_platform`."""

    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""

    def format(self) -> str:
        """``os/arch[/variant]`` (containerd ``Format``)."""
        parts = [self.os or "unknown", self.architecture or "unknown"]
        if self.variant:
            parts.append(self.variant)
        return "/".join(parts)

    def format_all(self) -> str:
        """Like :meth:`format` with ``(osversion)`` after the OS when set."""
        os_part = self.os or "unknown"
        if self.os_version:
            os_part += f"({self.os_version})"
        return "/".join([os_part, *self.format().split("/")[1:]])

    def for_path(self) -> str:
        """Directory-name form used by multi-platform local/tar outputs."""
        return self.format().replace("/", "_")

    def normalized(self) -> Platform:
        return normalize(self)

    def __str__(self) -> str:
        return self.format()


def _normalize_os(os_name: str) -> str:
    os_name = os_name.lower()
    return "darwin" if os_name == "macos" else os_name


def _normalize_arch(arch: str, variant: str) -> tuple[str, str]:
    arch, variant = arch.lower(), variant.lower()
    if arch == "i386":
        return "386", ""
    if arch in ("x86_64", "x86-64", "amd64"):
        return "amd64", "" if variant == "v1" else variant
    if arch in ("aarch64", "arm64"):
        if variant in ("8", "v8", "v8.0"):
            variant = ""
        elif variant in ("9", "9.0", "v9.0"):
            variant = "v9"
        return "arm64", variant
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    if arch == "arm":
        if variant in ("", "7"):
            variant = "v7"
        elif variant in ("5", "6", "8"):
            variant = "v" + variant
        return "arm", variant
    return arch, variant


def normalize(p: Platform) -> Platform:
    """containerd ``Normalize``: canonical OS, architecture and variant spelling."""
    arch, variant = _normalize_arch(p.architecture, p.variant)
    return Platform(_normalize_os(p.os), arch, variant, p.os_version)


def _bad(spec: str, why: str) -> UsageError:
    return UsageError(f"invalid platform {spec!r}: {why}", hint=_FORMAT_HINT)


def parse_platform(spec: str) -> Platform:
    """Parse and normalise a platform specifier; ``""``/``"local"`` is the host."""
    text = spec.strip()
    if text in ("", "local"):
        return host_platform()
    if "*" in text:
        raise _bad(spec, "wildcards are not supported")
    parts = text.split("/", 3)
    if len(parts) > 3:
        raise _bad(spec, "too many components")
    m = _OS_PART.match(parts[0])
    if m is None:
        raise _bad(spec, "malformed OS version")
    os_name, os_version = m.group(1), m.group(2) or ""
    if os_name and not _COMPONENT.match(os_name):
        raise _bad(spec, f"{os_name!r} is not a valid OS name")
    for part in parts[1:]:
        if not _COMPONENT.match(part):
            raise _bad(spec, f"{part!r} is not a valid component")
    if len(parts) == 1:
        os_norm = _normalize_os(os_name)
        if os_norm in KNOWN_OS:
            host = host_platform()
            return Platform(os_norm, host.architecture, host.variant, os_version)
        arch, variant = _normalize_arch(parts[0], "")
        if arch in KNOWN_ARCH:
            return Platform(host_platform().os, arch, variant)
        raise _bad(spec, "unknown operating system or architecture")
    if not os_name:
        raise _bad(spec, "missing OS")
    arch, variant = _normalize_arch(parts[1], parts[2] if len(parts) == 3 else "")
    return Platform(_normalize_os(os_name), arch, variant, os_version)


def parse_platform_list(specs: str | Iterable[str]) -> list[Platform]:
    """Parse ``"a,b"`` (or several such strings); duplicates after normalisation are
    dropped, first occurrence order kept. Blank input gives an empty list (the caller
    picks its default, e.g. the builder's native platform)."""
    items = [specs] if isinstance(specs, str) else list(specs)
    out: list[Platform] = []
    seen: set[Platform] = set()
    for item in items:
        for piece in item.split(","):
            if not piece.strip():
                continue
            p = parse_platform(piece)
            if p not in seen:
                seen.add(p)
                out.append(p)
    return out


_MACHINE_MAP: Final = {
    "x86_64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "arm64": ("arm64", ""),
    "armv8l": ("arm", "v8"),
    "armv7l": ("arm", "v7"),
    "armv7": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "armv5tel": ("arm", "v5"),
    "i386": ("386", ""),
    "i486": ("386", ""),
    "i586": ("386", ""),
    "i686": ("386", ""),
    "ppc64le": ("ppc64le", ""),
    "ppc64": ("ppc64", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
    "loongarch64": ("loong64", ""),
    "mips64": ("mips64", ""),
}


@cache
def host_platform() -> Platform:
    """The platform of this machine (the default BUILDPLATFORM/TARGETPLATFORM)."""
    system = _host.system().lower() or "linux"
    machine = _host.machine().lower()
    arch, variant = _MACHINE_MAP.get(machine, (machine or "amd64", ""))
    return Platform(_normalize_os(system), arch, variant)


_ORDERED_VARIANTS: Final = {
    "arm": ("v5", "v6", "v7", "v8"),
    "amd64": ("", "v2", "v3", "v4"),
}


def compatible_platforms(spec: Platform) -> list[Platform]:
    """``spec`` followed by the platforms it can run natively, best first (the lower
    variants of the same architecture)."""
    p = normalize(spec)
    out = [p]
    order = _ORDERED_VARIANTS.get(p.architecture)
    if order and p.variant in order:
        lower = order[: order.index(p.variant)]
        out.extend(Platform(p.os, p.architecture, v, p.os_version) for v in reversed(lower))
    return out


def match_rank(spec: Platform, candidate: Platform) -> int | None:
    """0 for an exact match, n for the n-th lower compatible variant, None if
    ``candidate`` cannot run as ``spec``. OS versions are ignored."""
    c = normalize(candidate)
    for rank, p in enumerate(compatible_platforms(spec)):
        if (p.os, p.architecture, p.variant) == (c.os, c.architecture, c.variant):
            return rank
    return None


def matches(spec: Platform, candidate: Platform) -> bool:
    return match_rank(spec, candidate) is not None


def best_match(spec: Platform, candidates: Sequence[Platform]) -> int | None:
    """Index of the best candidate for ``spec`` (first one wins a tie), or None."""
    best: tuple[int, int] | None = None
    for index, cand in enumerate(candidates):
        rank = match_rank(spec, cand)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, index)
    return None if best is None else best[1]
