"""Assemble an image (config + manifest) from a build result's layer blobs."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from buildkit_py.content.store import ContentStore
from buildkit_py.exporter.layers import LayerBlob
from buildkit_py.exporter.manifest import (
    Blob,
    Descriptor,
    config_blob,
    manifest_blob,
    platform_json,
)


def rfc3339(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, tz=UTC)
    if dt.microsecond:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def reconcile_history(history: list[dict[str, Any]], n_layers: int,
                      created: str) -> list[dict[str, Any]]:
    """Make non-empty history entries match the layers (reference §1.12)."""
    out = [dict(h) for h in history]
    non_empty = [i for i, h in enumerate(out) if not h.get("empty_layer")]
    if len(non_empty) > n_layers:
        # surplus entries become empty, from the bottom
        for i in non_empty[: len(non_empty) - n_layers]:
            out[i]["empty_layer"] = True
    elif len(non_empty) < n_layers:
        # layers without history (e.g. from a base image without any): prepend generic ones
        missing = n_layers - len(non_empty)
        out = [{"created": created, "created_by": "", "comment": "buildkit.exporter.image.v0"}
               for _ in range(missing)] + out
    for h in out:
        h.setdefault("created", created)
    return out


@dataclass(frozen=True)
class BuiltImage:
    manifest: Blob
    config: Blob
    layers: list[LayerBlob]
    platform: dict[str, str]

    @property
    def image_id(self) -> str:
        return self.config.descriptor.digest


def make_image(store: ContentStore, image_config: dict[str, Any], layers: list[LayerBlob], *,
               os_: str, arch: str, variant: str = "", oci: bool = True,
               source_date_epoch: int | None = None,
               annotations: dict[str, str] | None = None) -> BuiltImage:
    """Write config and manifest blobs to ``store``; returns them with their descriptors."""
    now = float(source_date_epoch) if source_date_epoch is not None else time.time()
    created = rfc3339(now)
    cfg = copy.deepcopy(image_config)
    cfg["architecture"] = arch
    cfg["os"] = os_
    if variant:
        cfg["variant"] = variant
    else:
        cfg.pop("variant", None)
    cfg["rootfs"] = {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]}
    history = reconcile_history(cfg.get("history", []), len(layers), created)
    if source_date_epoch is not None:
        for h in history:
            if h.get("created", "") > created:
                h["created"] = created
    cfg["history"] = history
    cfg["created"] = created
    cblob = config_blob(cfg, oci)
    store.write(cblob.data, cblob.descriptor.digest)
    layer_descs = [Descriptor(layer.media_type, layer.digest, layer.size) for layer in layers]
    plat = platform_json(os_, arch, variant)
    mblob = manifest_blob(cblob.descriptor, layer_descs, oci=oci, annotations=annotations,
                          platform=plat)
    store.write(mblob.data, mblob.descriptor.digest)
    return BuiltImage(mblob, cblob, layers, plat)
