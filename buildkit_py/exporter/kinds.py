"""Which exporter writes each type of ``--output``: the one table, used once per build
(when the builder turns the parsed outputs into exporters)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from buildkit_py.api.outputs import OutputSpec
from buildkit_py.errors import UsageError
from buildkit_py.exporter.base import Exporter

# type -> "module:class" of its exporter; a build imports only the kinds it asked for
EXPORTERS: dict[str, str] = {
    "image": "buildkit_py.exporter.image_store:ImageStoreExporter",
    "registry": "buildkit_py.exporter.image_store:ImageStoreExporter",
    "oci": "buildkit_py.exporter.oci:OCIExporter",
    "docker": "buildkit_py.exporter.docker:DockerExporter",
    "local": "buildkit_py.exporter.local:LocalExporter",
    "tar": "buildkit_py.exporter.tar:TarExporter",
}


def exporter_class(kind: str) -> Callable[[OutputSpec], Exporter]:
    """The exporter of output type ``kind`` (one of :data:`EXPORTERS`), imported now."""
    module, name = EXPORTERS[kind].split(":")
    cls: Callable[[OutputSpec], Exporter] = getattr(importlib.import_module(module), name)
    return cls


def exporters_for(outputs: list[OutputSpec]) -> list[Exporter]:
    """One exporter per output, in the order asked."""
    unknown = [o.type for o in outputs if o.type not in EXPORTERS]
    if unknown:
        raise UsageError(f"unknown output type {unknown[0]!r}",
                         hint=f"types: {', '.join(EXPORTERS)}")
    return [exporter_class(o.type)(o) for o in outputs]
