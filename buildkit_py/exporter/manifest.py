"""Image manifests, indexes and configs as exact bytes (serialised once, digested once)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from buildkit_py.registry import mediatypes as mt


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, str] | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest,
                               "size": self.size}
        if self.annotations:
            out["annotations"] = dict(sorted(self.annotations.items()))
        if self.platform:
            out["platform"] = self.platform
        return out


@dataclass(frozen=True)
class Blob:
    """Serialised JSON plus its descriptor."""

    data: bytes
    descriptor: Descriptor


def canonical_json(obj: Any) -> bytes:
    """Compact JSON with sorted keys: same object, same bytes, same digest."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob(obj: Any, media_type: str, **kw: Any) -> Blob:
    data = canonical_json(obj)
    return Blob(data, Descriptor(media_type, sha256_digest(data), len(data), **kw))


def chain_id(diff_ids: list[str]) -> str:
    """OCI ChainID of a stack of layers."""
    chain = ""
    for diff_id in diff_ids:
        chain = diff_id if not chain else sha256_digest(f"{chain} {diff_id}".encode())
    return chain


def config_blob(config: dict[str, Any], oci: bool = True) -> Blob:
    return blob(config, mt.OCI_CONFIG if oci else mt.DOCKER_CONFIG)


def layer_media_type(compression: str, oci: bool = True) -> str:
    if compression == "zstd":
        return mt.OCI_LAYER_ZSTD  # zstd has only an OCI media type
    if compression == "uncompressed":
        return mt.OCI_LAYER if oci else mt.DOCKER_LAYER
    return mt.OCI_LAYER_GZIP if oci else mt.DOCKER_LAYER_GZIP


def manifest_blob(config: Descriptor, layers: list[Descriptor], *, oci: bool = True,
                  annotations: dict[str, str] | None = None,
                  platform: dict[str, str] | None = None) -> Blob:
    media_type = mt.OCI_MANIFEST if oci else mt.DOCKER_MANIFEST
    obj: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.to_json(),
        "layers": [layer.to_json() for layer in layers],
    }
    if annotations and oci:
        obj["annotations"] = dict(sorted(annotations.items()))
    return blob(obj, media_type, platform=platform)


def index_blob(manifests: list[Descriptor], *, oci: bool = True,
               annotations: dict[str, str] | None = None) -> Blob:
    media_type = mt.OCI_INDEX if oci else mt.DOCKER_MANIFEST_LIST
    obj: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [m.to_json() for m in manifests],
    }
    if annotations and oci:
        obj["annotations"] = dict(sorted(annotations.items()))
    return blob(obj, media_type)


def platform_json(os_: str, arch: str, variant: str = "", os_version: str = "") -> dict[str, str]:
    out = {"architecture": arch, "os": os_}
    if variant:
        out["variant"] = variant
    if os_version:
        out["os.version"] = os_version
    return out
