"""OCI platforms: parsing, normalisation, formatting and matching (containerd rules).

A leaf module (standard library only) shared by the frontend, solver, registry client
and exporters.

* :func:`parse_platform` accepts ``os[(osversion)][/arch[/variant]]`` or a lone OS or
  architecture, normalised as containerd does (``aarch64`` -> ``arm64``, ``arm64/v8``
  -> ``arm64``, ``x86_64`` -> ``amd64``, ``armhf`` -> ``arm/v7``, ``arm`` -> ``arm/v7``,
  ``i386`` -> ``386``, ``macos`` -> ``darwin``). ``""`` and ``"local"`` mean the host.
* :func:`arch_of` is the one place an architecture name is spelled canonically: the
  containerd table above, then for names containerd does not know, the kernel's and
  distributions' machine names (``uname -m``: ``armv7l`` -> ``arm/v7``, ``i686`` ->
  ``386``; Debian's ``ppc64el`` -> ``ppc64le``). The emulator setup and the host
  platform go through it too.
* :meth:`Platform.format` gives ``os/arch[/variant]``; :meth:`Platform.format_all`
  also shows the OS version (``windows(10.0.17763)/amd64``), as BuildKit's
  ``TARGETPLATFORM`` does; :meth:`Platform.for_path` gives ``linux_arm_v7`` for
  per-platform output directories.
* :meth:`Platform.to_json` / :meth:`Platform.from_json` read and write the
  ``platform`` object of OCI descriptors (normalised on the way in).
* :func:`match_rank` / :func:`matches` / :func:`best_match` pick manifests from an
  index: same OS and architecture, exact variant preferred, else a lower compatible
  variant as containerd's ``platforms.Only`` orders them (arm v8 runs v7/v6/v5, amd64
  v3 runs v2/v1, arm64 v8.2 runs v8.1/v8, arm64 v9.x runs v9.(x-1)..v9 then
  v8.(x+5)..v8). Unlike ``Only`` the architecture never changes (no amd64 -> 386 or
  arm64 -> arm fallback): the documented rule is an exact OS and architecture.
"""

from __future__ import annotations

import platform as _host
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from buildkit_py.errors import UsageError
from buildkit_py.gostrings import go_quote

__all__ = [
    "Platform",
    "arch_of",
    "as_platform",
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

# containerd's specifierRe and osRe (os, then optional "(version+feature...)")
_COMPONENT_RE: Final = r"^[A-Za-z0-9_.-]+$"
_OS_RE: Final = r"^([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.%-]*)((?:\+[A-Za-z0-9_.%-]+)*)\))?$"
_COMPONENT: Final = re.compile(_COMPONENT_RE)
_OS_PART: Final = re.compile(_OS_RE)

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

    def to_json(self) -> dict[str, str]:
        """The OCI descriptor ``platform`` object (image-spec field order)."""
        out = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            out["os.version"] = self.os_version
        if self.variant:
            out["variant"] = self.variant
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Platform:
        """A normalised Platform from a descriptor's ``platform`` object."""
        return normalize(cls(
            str(data.get("os") or ""), str(data.get("architecture") or ""),
            str(data.get("variant") or ""), str(data.get("os.version") or ""),
        ))

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


def _bad(message: str) -> UsageError:
    # containerd's wording (BuildKit and buildx print it as is)
    return UsageError(f"{message}: invalid argument", hint=_FORMAT_HINT)


def parse_platform(spec: str) -> Platform:
    """Parse and normalise a platform specifier; ``""``/``"local"`` is the host."""
    text = spec.strip()
    if text in ("", "local"):
        return host_platform()
    if "*" in text:
        raise _bad(f"{go_quote(text)}: wildcards not yet supported")
    parts = text.split("/", 3)
    m = _OS_PART.match(parts[0])
    if m is None:
        raise _bad(f"{go_quote(parts[0])} is an invalid OS component of {go_quote(text)}: "
                   f"OSAndVersion specifier component must match {go_quote(_OS_RE)}")
    os_name, os_version = m.group(1), m.group(2) or ""
    for part in parts[1:]:
        if not _COMPONENT.match(part):
            raise _bad(f"{go_quote(part)} is an invalid component of {go_quote(text)}: "
                       f"platform specifier component must match {go_quote(_COMPONENT_RE)}")
    if len(parts) > 3:
        raise _bad(f"{go_quote(text)}: cannot parse platform specifier")
    if len(parts) == 1:
        os_norm = _normalize_os(os_name)
        if os_norm in KNOWN_OS:
            host = host_platform()
            return Platform(os_norm, host.architecture, host.variant, os_version)
        arch, variant = _normalize_arch(parts[0], "")
        if arch in KNOWN_ARCH:
            return Platform(host_platform().os, arch, variant)
        raise _bad(f"{go_quote(text)}: unknown operating system or architecture")
    arch, variant = _normalize_arch(parts[1], parts[2] if len(parts) == 3 else "")
    return Platform(_normalize_os(os_name), arch, variant, os_version)


def as_platform(value: Platform | str | None) -> Platform:
    """A Platform as is, a specifier parsed, or None for this machine's platform."""
    if value is None:
        return host_platform()
    if isinstance(value, Platform):
        return value
    return parse_platform(value)


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
    "ppc64el": ("ppc64le", ""),  # Debian's name
}


def arch_of(name: str, variant: str = "") -> tuple[str, str]:
    """Canonical ``(architecture, variant)`` for an architecture name in containerd's
    spellings or, failing those, a machine name (``uname -m`` or Debian's)."""
    arch, variant = _normalize_arch(name, variant)
    if arch in KNOWN_ARCH:
        return arch, variant
    return _MACHINE_MAP.get(arch, (arch, variant))


@cache
def host_platform() -> Platform:
    """The platform of this machine (the default BUILDPLATFORM/TARGETPLATFORM)."""
    system = _host.system().lower() or "linux"
    arch, variant = arch_of(_host.machine() or "amd64")
    return Platform(_normalize_os(system), arch, variant)


def _version(variant: str) -> int | None:
    """3 for ``v3`` or ``3``; None when not a plain version number."""
    digits = variant[1:] if variant.startswith("v") else variant
    return int(digits) if digits.isdigit() else None


def _lower_variants(arch: str, variant: str) -> list[str]:
    """Variants below ``variant`` that ``arch`` still runs, best first (containerd
    ``platformVector``, same architecture only); spelled before normalisation."""
    if arch == "arm":
        n = _version(variant)
        return [f"v{i}" for i in range(n - 1, 4, -1)] if n is not None else []
    if arch == "amd64":
        n = _version(variant) if variant else 1
        return [f"v{i}" for i in range(n - 1, 0, -1)] if n is not None else []
    if arch == "arm64":
        major_text, _, minor_text = (variant or "v8").partition(".")
        major = _version(major_text)
        if major is None or major < 8:
            return []
        minor = int(minor_text) if len(minor_text) == 1 and minor_text.isdigit() else 0
        out: list[str] = []
        if major == 9:
            # v9.0 branched from v8.5: v9.x also runs v8.(x+5) and below
            out += [f"v9.{m}" for m in range(minor - 1, -1, -1)]
            major, minor = 8, min(minor + 5, 9)
            out.append(f"v8.{minor}")
        out += [f"v{major}.{m}" for m in range(minor - 1, -1, -1)]
        return out
    return []


def compatible_platforms(spec: Platform) -> list[Platform]:
    """``spec`` followed by the platforms it can run natively, best first (the lower
    variants of the same architecture)."""
    p = normalize(spec)
    lower = (
        normalize(Platform(p.os, p.architecture, v, p.os_version))
        for v in _lower_variants(p.architecture, p.variant)
    )
    return [p, *lower]


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


def best_match(spec: Platform, candidates: Iterable[Platform | None]) -> int | None:
    """Index of the best candidate for ``spec`` (first one wins a tie), or None.
    ``None`` entries (index entries without a platform) never match."""
    wanted = [(c.os, c.architecture, c.variant) for c in compatible_platforms(spec)]
    best: tuple[int, int] | None = None
    for index, cand in enumerate(candidates):
        if cand is None:
            continue
        c = normalize(cand)
        key = (c.os, c.architecture, c.variant)
        if key in wanted:
            rank = wanted.index(key)
            if best is None or rank < best[0]:
                best = (rank, index)
                if rank == 0:
                    break
    return None if best is None else best[1]
