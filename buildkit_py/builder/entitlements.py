"""Entitlements: what a build may do beyond the sandbox, and who decides it.

Two gates, as in buildkitd. The builder's config lists what it is willing to grant
(``insecure-entitlements``, ``bkpyd --allow-insecure-entitlement``); a build asks for some of
that with ``--allow``. Then, when the LLB is loaded, every step that needs an entitlement
must have been granted it: ``RUN --network=host`` needs ``network.host``,
``RUN --security=insecure`` needs ``security.insecure``, and ``RUN --device`` needs
``device`` (all devices) or ``device=NAME`` for each device it resolves to, unless the
device is auto-allowed by its CDI spec or the config.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from buildkit_py.errors import BuildError
from buildkit_py.executor.cdi import CDIRegistry
from buildkit_py.llb import ops_pb2


def check_granted(requested: list[str], grantable: list[str]) -> None:
    """A build may only be granted what the builder's config lets it grant."""
    keys = {g.partition("=")[0] for g in grantable}
    for e in requested:
        key = e.partition("=")[0]
        if key not in keys:
            raise BuildError(
                f"granting entitlement {key} is not allowed by build daemon configuration",
                hint=f"start bkpyd with --allow-insecure-entitlement {key}, or list it in "
                     "insecure-entitlements of the builder config (bkpyd.toml; "
                     "$BKPY_BUILDER_CONFIG for the embedded builder)")


@dataclass
class DeviceGrant:
    """The ``device`` entitlements of one build."""

    everything: bool = False
    # device name (or kind) granted -> the name it stands for ("" = itself), from
    # ``device=NAME[,alias=ALIAS]``: the Dockerfile's ALIAS means NAME
    names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, entitlements: Iterable[str]) -> DeviceGrant:
        grant = cls()
        for e in entitlements:
            key, sep, rest = e.partition("=")
            if key != "device":
                continue
            if not sep:
                grant.everything = True
                continue
            name, *options = rest.split(",")
            alias = next((o.partition("=")[2] for o in options if o.startswith("alias=")), "")
            if alias:
                grant.names[alias] = name
            else:
                grant.names[name] = ""
        return grant

    @property
    def aliases(self) -> dict[str, str]:
        return {alias: name for alias, name in self.names.items() if name}


def check_llb(definition: Any, entitlements: list[str], cdi: CDIRegistry | None) -> None:
    """Refuse the build (as BuildKit's LLB loader does) when a step needs an entitlement
    that was not granted."""
    grant = DeviceGrant.of(entitlements)
    refreshed = False
    for vertex in definition.vertices():
        if vertex.kind != "exec":
            continue
        ex = vertex.op.exec
        for needed, used in (("network.host", ex.network == ops_pb2.NET_MODE_HOST),
                             ("security.insecure",
                              ex.security == ops_pb2.SECURITY_MODE_INSECURE)):
            if used and needed not in entitlements:
                raise BuildError(f"failed to load LLB: {needed} is not allowed")
        if not ex.cdi_devices:
            continue
        if cdi is not None and not refreshed:
            # the host's spec files as they are now, read once per build: the steps'
            # devices are resolved against this reading
            cdi.refresh()
            refreshed = True
        if not grant.everything:
            _check_devices(list(ex.cdi_devices), grant, cdi)


def _check_devices(requested: list[Any], grant: DeviceGrant, cdi: CDIRegistry | None) -> None:
    if cdi is None:
        raise BuildError("failed to load LLB: this builder has CDI devices disabled",
                         hint="enable [cdi] in the builder config")
    wanted: list[str] = []
    for d in requested:
        if grant.names.get(d.name):
            continue  # an alias the build was granted: the device it names is allowed
        try:
            wanted += cdi.find(d.name, optional=d.optional)
        except BuildError as err:
            raise BuildError(f"failed to load LLB: {err.message}", hint=err.hint) from None
    granted: set[str] = set()
    for name in grant.names:
        if not grant.names[name]:
            granted.update(cdi.find(name, optional=True))
    forbidden = [q for q in dict.fromkeys(wanted) if q not in granted and not cdi.auto_allow(q)]
    if len(forbidden) == 1:
        raise BuildError(f"failed to load LLB: device {forbidden[0]} is requested by the "
                         "build but not allowed", hint="allow it with --allow device or "
                         f"--allow device={forbidden[0]}")
    if forbidden:
        raise BuildError(f"failed to load LLB: devices {', '.join(forbidden)} are requested "
                         "by the build but not allowed", hint="allow them with --allow device")
