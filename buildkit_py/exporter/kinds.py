"""Which exporter writes each type of ``--output``: the one table, used once per build
(when the builder turns the parsed outputs into exporters)."""

from __future__ import annotations

from collections.abc import Callable

from buildkit_py.api.outputs import OutputSpec
from buildkit_py.errors import UsageError
from buildkit_py.exporter.base import Exporter
from buildkit_py.exporter.docker import DockerExporter
from buildkit_py.exporter.image_store import ImageStoreExporter
from buildkit_py.exporter.local import LocalExporter
from buildkit_py.exporter.oci import OCIExporter
from buildkit_py.exporter.tar import TarExporter

EXPORTERS: dict[str, Callable[[OutputSpec], Exporter]] = {
    "image": ImageStoreExporter,
    "registry": ImageStoreExporter,
    "oci": OCIExporter,
    "docker": DockerExporter,
    "local": LocalExporter,
    "tar": TarExporter,
}


def exporters_for(outputs: list[OutputSpec]) -> list[Exporter]:
    """One exporter per output, in the order asked."""
    unknown = [o.type for o in outputs if o.type not in EXPORTERS]
    if unknown:
        raise UsageError(f"unknown output type {unknown[0]!r}",
                         hint=f"types: {', '.join(EXPORTERS)}")
    return [EXPORTERS[o.type](o) for o in outputs]
