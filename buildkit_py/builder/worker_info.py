"""This machine as a build worker: the platforms it runs natively and through binfmt
emulation, and the labels BuildKit's ``buildctl debug workers`` shows. Both the embedded
client and ``bkpyd`` (``ListWorkers``) answer with it.

A buildkitd.toml's ``[worker.oci] platforms`` come first, as buildkitd lists them, and the
detected platforms none of them runs follow; its ``labels`` are added to (and may
override) the worker's own."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from buildkit_py import __version__
from buildkit_py.api.workers import GCRuleInfo, WorkerInfo
from buildkit_py.errors import UsageError
from buildkit_py.executor.binfmt import emulated_platforms, native_arches
from buildkit_py.platforms import compatible_platforms, host_platform, parse_platform

if TYPE_CHECKING:
    from buildkit_py.config import BuilderConfig


def worker_platforms(config: BuilderConfig) -> list[str]:
    """``[worker.oci] platforms`` normalised as buildkitd parses them (duplicates once);
    UsageError for one that is no platform (bkpyd checks them at start)."""
    out: list[str] = []
    for spec in config.worker_platforms:
        try:
            plat = parse_platform(spec).format()
        except UsageError as err:
            raise UsageError(f"[worker.oci]: invalid platforms: {err.message}",
                             hint=err.hint) from None
        if plat not in out:
            out.append(plat)
    return out


def default_platform(config: BuilderConfig) -> str:
    """The default build and target platform: the worker's first, as in buildkitd."""
    configured = worker_platforms(config)
    return configured[0] if configured else host_platform().format()


def _runs_any(configured: list[str], platform: str) -> bool:
    """Whether a configured platform runs ``platform`` (containerd's ``Only`` matcher:
    the same platform, a lower variant, or 386 under amd64)."""
    p = parse_platform(platform)
    for c in configured:
        spec = parse_platform(c)
        if p in compatible_platforms(spec):
            return True
        if spec.architecture == "amd64" and p.architecture == "386" and p.os == spec.os:
            return True
    return False


def local_worker_info(config: BuilderConfig,
                      gc_rules: list[GCRuleInfo] | None = None) -> WorkerInfo:
    """This machine as a worker: configured platforms first, then native ones, then
    binfmt-emulated ones; ``gc_rules``: what its GC applies (only a daemon collects)."""
    host = host_platform().format()
    native = [host, *(f"linux/{a}" for a in native_arches()[1:])]
    emulated = [p for p in emulated_platforms() if p not in native]
    configured = worker_platforms(config)
    detected = [p for p in native + emulated if not _runs_any(configured, p)]
    hostname = socket.gethostname()
    labels = {"org.mobyproject.buildkit.worker.executor": "oci",
              "org.mobyproject.buildkit.worker.oci.runtime": config.oci_runtime,
              "org.mobyproject.buildkit.worker.snapshotter": "overlayfs",
              "org.mobyproject.buildkit.worker.hostname": hostname,
              "org.mobyproject.buildkit.worker.network": "host"}
    labels.update(config.worker_labels)
    return WorkerInfo(
        id=hostname, platforms=configured + detected,
        emulated=[p for p in emulated if p in configured + detected],
        labels=labels, version=__version__, gc_rules=list(gc_rules or []))
