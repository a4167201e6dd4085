"""OCI content descriptors and helpers to read manifests and indexes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from buildkit_py.platforms import Platform
from buildkit_py.registry.errors import InvalidManifestError
from buildkit_py.registry.reference import InvalidReferenceError, validate_digest


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Descriptor:
    """What a manifest or index says about one piece of content."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    urls: tuple[str, ...] = ()
    artifact_type: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Descriptor:
        try:
            digest = validate_digest(str(data["digest"]))
            size = int(data["size"])
            media_type = str(data.get("mediaType", ""))
        except (KeyError, TypeError, ValueError, InvalidReferenceError) as err:
            raise InvalidManifestError(f"invalid descriptor {dict(data)!r}: {err}") from None
        if size < 0:
            raise InvalidManifestError(f"invalid descriptor size {size} for {digest}")
        plat = data.get("platform")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            platform=Platform.from_json(plat) if isinstance(plat, Mapping) else None,
            annotations=dict(data.get("annotations") or {}),
            urls=tuple(data.get("urls") or ()),
            artifact_type=data.get("artifactType"),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type, "digest": self.digest, "size": self.size,
        }
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        return out

    def with_platform(self, platform: Platform | None) -> Descriptor:
        return Descriptor(
            self.media_type, self.digest, self.size, platform, self.annotations, self.urls,
            self.artifact_type,
        )


def parse_json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidManifestError(f"{what} is not valid JSON: {err}") from None
    if not isinstance(obj, dict):
        raise InvalidManifestError(f"{what} is not a JSON object")
    return obj


def manifest_children(doc: Mapping[str, Any], what: str) -> tuple[Descriptor, list[Descriptor]]:
    """(config, layers) of an image manifest document."""
    config = doc.get("config")
    layers = doc.get("layers")
    if not isinstance(config, Mapping) or not isinstance(layers, list):
        raise InvalidManifestError(f"{what}: image manifest without config or layers")
    return Descriptor.from_json(config), [Descriptor.from_json(x) for x in layers]


def index_children(doc: Mapping[str, Any], what: str) -> list[Descriptor]:
    """The ``manifests`` of an index / manifest list."""
    manifests = doc.get("manifests")
    if not isinstance(manifests, list):
        raise InvalidManifestError(f"{what}: index without manifests")
    return [Descriptor.from_json(x) for x in manifests]
