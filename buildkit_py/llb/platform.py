"""Platform values carried by ops and states, as ``pb.Platform`` messages.

Parsing, normalisation and formatting are :mod:`buildkit_py.platforms`' (one set of
containerd rules for the whole builder); this module only converts to and from the
protobuf message.
"""

from __future__ import annotations

from buildkit_py import platforms
from buildkit_py.errors import UsageError
from buildkit_py.llb import ops_pb2
from buildkit_py.llb.errors import LLBError
from buildkit_py.platforms import Platform

_HINT = "use os/arch[/variant], e.g. linux/amd64 or linux/arm/v7"


def to_pb(p: Platform) -> ops_pb2.Platform:
    """The ``pb.Platform`` message for ``p``."""
    return ops_pb2.Platform(
        os=p.os, architecture=p.architecture, variant=p.variant, os_version=p.os_version
    )


def from_pb(msg: ops_pb2.Platform) -> Platform:
    """The platform a message names (as stored, not re-normalised)."""
    return Platform(msg.os, msg.architecture, msg.variant, msg.os_version)


def parse_platform(spec: str) -> ops_pb2.Platform:
    """Parse ``os[(osversion)]/arch[/variant]`` (e.g. ``linux/arm64``) into a normalised
    message. An op pins a concrete platform, so the lone-OS/architecture and host
    shorthands of :func:`buildkit_py.platforms.parse_platform` are refused here."""
    if spec.strip().count("/") not in (1, 2):
        raise LLBError(f"invalid platform {spec!r}", hint=_HINT)
    try:
        return to_pb(platforms.parse_platform(spec))
    except UsageError as e:
        raise LLBError(f"invalid platform {spec!r}: {e.message}", hint=e.hint) from None


def format_platform(p: ops_pb2.Platform) -> str:
    """Render a message as ``os/arch[/variant]``."""
    return from_pb(p).format()


def host_platform() -> ops_pb2.Platform:
    """The platform of the machine this process runs on."""
    return to_pb(platforms.host_platform())


def to_platform(value: str | Platform | ops_pb2.Platform) -> ops_pb2.Platform:
    """Accept a platform string, a :class:`Platform` or a message; return a new message."""
    if isinstance(value, str):
        return parse_platform(value)
    if isinstance(value, Platform):
        return to_pb(value)
    copy = ops_pb2.Platform()
    copy.CopyFrom(value)
    return copy
