"""``type=image`` and ``type=registry`` outputs: the image under its names in the local
image store, and pushed to the registries of those names when asked (``push=true``;
``type=registry`` always)."""

from __future__ import annotations

from typing import ClassVar

from buildkit_py.api.outputs import OutputSpec
from buildkit_py.errors import UsageError
from buildkit_py.exporter.base import Built, ExportEnv
from buildkit_py.registry.reference import parse_reference


class ImageStoreExporter:
    makes_image: ClassVar[bool] = True

    def __init__(self, spec: OutputSpec) -> None:
        self.spec = spec

    def export(self, built: Built, env: ExportEnv) -> None:
        top = built.image_for(self.spec).top
        if not built.names:
            if self.spec.pushes:
                raise UsageError("pushing needs an image name",
                                 hint="add -t NAME or --output type=image,name=NAME,push=true")
            return
        for name in built.names:
            ref = parse_reference(name)
            env.image_store.put(str(ref), top.media_type, top.digest, top.size)
        if self.spec.pushes:
            for name in built.names:
                ref = parse_reference(name)
                with env.step(f"pushing {ref.familiar}"):
                    env.registry().push(ref, env.content, top,
                                        tags=(ref.tag,) if ref.tag else ())
