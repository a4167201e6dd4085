"""Read an image's config and layer tars from an OCI layout (a folder or a tar)."""

from __future__ import annotations

import gzip
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_INDEX_TYPES = {"application/vnd.oci.image.index.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json"}


@dataclass
class ImageArchive:
    """One platform's image: the config document and its layers as uncompressed tar bytes."""

    config: dict[str, Any]
    layers: list[bytes]
    config_bytes: bytes = b""


def decompress_layer(blob: bytes) -> bytes:
    """Layers are sniffed, not trusted by media type: gzip, zstd or plain tar."""
    if blob.startswith(_GZIP_MAGIC):
        return gzip.decompress(blob)
    if blob.startswith(_ZSTD_MAGIC):
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress(blob)
    return blob


class _Files:
    """Uniform read access to members of a tar file or a directory tree."""

    def __init__(self, path: Path) -> None:
        self._dir = path if path.is_dir() else None
        self._tar = None if self._dir else tarfile.open(path)

    def read(self, name: str) -> bytes:
        name = name.removeprefix("./")
        if self._dir is not None:
            return (self._dir / name).read_bytes()
        assert self._tar is not None
        for candidate in (name, "./" + name):
            try:
                f = self._tar.extractfile(candidate)
            except KeyError:
                continue
            if f is not None:
                return f.read()
        raise KeyError(f"{name} not in archive")

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()


def read_oci_archive(path: Path, architecture: str = "amd64") -> ImageArchive:
    """The ``architecture`` image of an OCI layout, following nested indexes."""
    files = _Files(path)

    def blob(desc: dict[str, Any]) -> bytes:
        algo, hexdigest = desc["digest"].split(":", 1)
        return files.read(f"blobs/{algo}/{hexdigest}")

    try:
        descs: list[dict[str, Any]] = json.loads(files.read("index.json"))["manifests"]
        while True:
            if not descs:
                raise ValueError(f"no {architecture} manifest in {path}")
            desc = next((d for d in descs
                         if d.get("platform", {}).get("architecture") in (None, architecture)),
                        descs[0])
            doc = json.loads(blob(desc))
            if desc.get("mediaType") in _INDEX_TYPES or "manifests" in doc:
                descs = doc["manifests"]
                continue
            break
        raw_config = blob(doc["config"])
        layers = [decompress_layer(blob(layer)) for layer in doc.get("layers") or []]
    finally:
        files.close()
    return ImageArchive(json.loads(raw_config), layers, raw_config)
