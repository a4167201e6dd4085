"""``type=docker`` outputs: the OCI layout with ``manifest.json`` beside it (the
``docker load`` format, which newer docker reads as a layout directly), docker media
types unless ``oci-mediatypes=true``, and stdout when no ``dest``."""

from __future__ import annotations

import json

from buildkit_py.exporter.image import BuiltImage
from buildkit_py.exporter.oci import OCIExporter
from buildkit_py.exporter.oci_layout import blob_path
from buildkit_py.registry.reference import parse_reference


class DockerExporter(OCIExporter):
    def extra_files(self, images: list[BuiltImage], names: list[str]) -> list[tuple[str, bytes]]:
        return [("manifest.json", docker_manifest_json(images, names))]


def docker_manifest_json(images: list[BuiltImage], names: list[str]) -> bytes:
    """``docker save``'s index of the (first) image: its config, tags and layers."""
    img = images[0]
    # docker's short names with their tag (``foo:latest``), as BuildKit writes them
    tags = [r.familiar for r in map(parse_reference, names) if r.digest is None]
    entry = {"Config": blob_path(img.config.descriptor.digest), "RepoTags": tags,
             "Layers": [blob_path(layer.digest) for layer in img.layers]}
    return json.dumps([entry], separators=(",", ":")).encode()
