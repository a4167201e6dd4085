"""``type=oci`` outputs: the build's images as an OCI image layout (a tar, or a folder
with ``tar=false``; ``dest=-`` writes the tar to stdout)."""

from __future__ import annotations

from typing import ClassVar

from buildkit_py.api.outputs import OutputSpec
from buildkit_py.exporter.base import Built, ExportEnv
from buildkit_py.exporter.image import BuiltImage
from buildkit_py.exporter.oci_layout import write_layout


class OCIExporter:
    makes_image: ClassVar[bool] = True

    def __init__(self, spec: OutputSpec) -> None:
        self.spec = spec

    def extra_files(self, images: list[BuiltImage], names: list[str]) -> list[tuple[str, bytes]]:
        """Files the layout carries beside ``oci-layout`` and ``index.json``."""
        return []

    def export(self, built: Built, env: ExportEnv) -> None:
        image = built.image_for(self.spec)
        with env.step(f"exporting to {self.spec.type} image format"):
            write_layout(env.content, image.images, self.spec.dest or "-", names=built.names,
                         tar=self.spec.attrs.get("tar", "true") != "false", oci=image.oci,
                         multi=built.multi, files=self.extra_files(image.images, built.names),
                         top=image.top)
