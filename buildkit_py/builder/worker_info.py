"""This machine as a build worker: the platforms it runs natively and through binfmt
emulation, and the labels BuildKit's ``buildctl debug workers`` shows. Both the embedded
client and ``bkpyd`` (``ListWorkers``) answer with it."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from buildkit_py import __version__
from buildkit_py.api.workers import WorkerInfo
from buildkit_py.executor.binfmt import emulated_platforms, native_arches
from buildkit_py.platforms import host_platform

if TYPE_CHECKING:
    from buildkit_py.config import BuilderConfig


def local_worker_info(config: BuilderConfig) -> WorkerInfo:
    """This machine as a worker: native platforms first, then binfmt-emulated ones."""
    host = host_platform().format()
    native = [host, *(f"linux/{a}" for a in native_arches()[1:])]
    emulated = [p for p in emulated_platforms() if p not in native]
    hostname = socket.gethostname()
    return WorkerInfo(
        id=hostname, platforms=native + emulated, emulated=emulated,
        labels={"org.mobyproject.buildkit.worker.executor": "oci",
                "org.mobyproject.buildkit.worker.oci.runtime": config.oci_runtime,
                "org.mobyproject.buildkit.worker.snapshotter": "overlayfs",
                "org.mobyproject.buildkit.worker.hostname": hostname,
                "org.mobyproject.buildkit.worker.network": "host"},
        version=__version__)
