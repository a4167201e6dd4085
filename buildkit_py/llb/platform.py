"""Platform values (``os/arch[/variant]``) carried by ops and states."""

from __future__ import annotations

import platform as _host

from buildkit_py.llb import ops_pb2
from buildkit_py.llb.errors import LLBError

# Kernel machine names -> OCI architecture names.
_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "aarch64": "arm64",
    "armhf": "arm",
    "armel": "arm",
    "i386": "386",
    "i686": "386",
}


def _normalize(os_name: str, arch: str, variant: str) -> tuple[str, str, str]:
    os_name = os_name.lower()
    arch = _ARCH_ALIASES.get(arch.lower(), arch.lower())
    variant = variant.lower()
    if arch == "arm64" and variant == "v8":
        variant = ""  # v8 is the only arm64 variant in use; the canonical form omits it
    elif arch == "arm" and not variant:
        variant = "v7"
    elif arch == "amd64" and variant == "v1":
        variant = ""
    return os_name, arch, variant


def parse_platform(spec: str) -> ops_pb2.Platform:
    """Parse ``os/arch[/variant]`` (e.g. ``linux/arm64``) into a normalised Platform."""
    parts = spec.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise LLBError(
            f"invalid platform {spec!r}",
            hint="use os/arch[/variant], e.g. linux/amd64 or linux/arm/v7",
        )
    os_name, arch, variant = _normalize(parts[0], parts[1], parts[2] if len(parts) == 3 else "")
    return ops_pb2.Platform(os=os_name, architecture=arch, variant=variant)


def format_platform(p: ops_pb2.Platform) -> str:
    """Render a Platform as ``os/arch[/variant]``."""
    out = f"{p.os}/{p.architecture}"
    return f"{out}/{p.variant}" if p.variant else out


def host_platform() -> ops_pb2.Platform:
    """Return the platform of the machine this process runs on."""
    os_name, arch, variant = _normalize(_host.system() or "linux", _host.machine(), "")
    return ops_pb2.Platform(os=os_name, architecture=arch, variant=variant)


def to_platform(value: str | ops_pb2.Platform) -> ops_pb2.Platform:
    """Accept a platform string or message and return a (copied) message."""
    if isinstance(value, str):
        return parse_platform(value)
    copy = ops_pb2.Platform()
    copy.CopyFrom(value)
    return copy
