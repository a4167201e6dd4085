"""The exporter interface: what an export is given, and what it does with it.

A build's outputs are turned into exporters once, from the parsed ``--output`` specs
(``exporter.kinds``). The builder solves, makes the build's images once for every
output that needs one (``exporter.image_sets``), then hands each exporter the same
``Built`` results and ``ExportEnv`` stores; an exporter writes or sends its output and
reports its steps as vertices. The build's metadata (image ID, digest, descriptor)
comes from the images, not from any one exporter. Cache exporters (``--cache-to``)
take the same inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from buildkit_py.api.outputs import OutputSpec
from buildkit_py.content.images import ImageStore
from buildkit_py.content.store import ContentStore
from buildkit_py.exporter.image import BuiltImage
from buildkit_py.exporter.layers import LayerCache
from buildkit_py.exporter.manifest import Descriptor
from buildkit_py.platforms import Platform
from buildkit_py.snapshot import DBSnapshotter

if TYPE_CHECKING:
    from buildkit_py.registry.client import RegistryClient
    from buildkit_py.solver.progress import ProgressWriter


@dataclass(frozen=True)
class PlatformResult:
    """What one platform's build made: its root filesystem and image config."""

    platform: Platform
    config: dict[str, Any]
    snapshot_key: str | None  # None: the empty filesystem
    base_image: dict[str, Any] | None = None  # kept as is under rewrite-timestamp


@dataclass(frozen=True)
class ImageSet:
    """A build's images (one per platform) with one set of layer options."""

    images: list[BuiltImage]
    top: Descriptor  # the manifest, or the index when multi-platform
    oci: bool

    @property
    def image_id(self) -> str:
        return self.images[0].image_id


@dataclass(frozen=True)
class BuildImages:
    """A build's images, made once for all its image outputs: with the layer options of
    the first output that leaves the builder (``shipped``) and of the first one for the
    local image store (``stored``). Both share diff IDs, so their image ID is the same."""

    shipped: ImageSet | None
    stored: ImageSet | None

    @property
    def main(self) -> ImageSet:
        """The set the build's metadata describes."""
        main = self.shipped or self.stored
        assert main is not None
        return main

    def for_output(self, spec: OutputSpec) -> ImageSet:
        chosen = self.shipped if spec.leaves_builder else self.stored
        assert chosen is not None
        return chosen

    def metadata(self, names: list[str]) -> dict[str, Any]:
        """The build's metadata (``--metadata-file``), as BuildKit's image exporter words it."""
        out: dict[str, Any] = {
            "containerimage.digest": self.main.top.digest,
            "containerimage.descriptor": self.main.top.to_json(),
            "containerimage.config.digest": self.main.image_id,
        }
        if names:
            out["image.name"] = ",".join(names)
        return out


def image_names(outputs: list[OutputSpec], tags: list[str]) -> list[str]:
    """The names a build's images go by: every output's ``name=``, else the tags."""
    return [n for o in outputs for n in o.attrs.get("name", "").split(",") if n] or list(tags)


@dataclass(frozen=True)
class Built:
    """A build's results, as every exporter receives them."""

    results: list[PlatformResult]
    names: list[str]  # see image_names
    epoch: int | None  # SOURCE_DATE_EPOCH
    images: BuildImages | None  # None when no output and no metadata needs an image

    @property
    def multi(self) -> bool:
        return len(self.results) > 1

    def image_for(self, spec: OutputSpec) -> ImageSet:
        assert self.images is not None
        return self.images.for_output(spec)


@dataclass(frozen=True)
class ExportEnv:
    """The builder's stores and reporting, as exports use them."""

    content: ContentStore
    image_store: ImageStore
    layer_cache: LayerCache
    snapshotter: DBSnapshotter
    chain: Callable[[str], list[str]]  # snapshot key -> its committed keys, bottom first
    mount: Callable[[str | None], AbstractContextManager[Path]]  # a snapshot, read-only
    registry: Callable[[], RegistryClient]  # created on first use (httpx is slow to import)
    # report a step as a vertex; its writer reports the step's sub-progress
    step: Callable[[str], AbstractContextManager[ProgressWriter]]


class Exporter(Protocol):
    """One output of a build: made from its spec, then given the build's results."""

    makes_image: ClassVar[bool]  # exports the build's images (Built.image_for its spec)
    spec: OutputSpec

    def export(self, built: Built, env: ExportEnv) -> None: ...
