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
                      created: str | None) -> list[dict[str, Any]]:
    """Make non-empty history entries match the layers (reference §1.12); undated entries
    get ``created`` (None: left undated, for :func:`stamp_history`)."""
    out = [dict(h) for h in history]
    non_empty = [i for i, h in enumerate(out) if not h.get("empty_layer")]
    if len(non_empty) > n_layers:
        # surplus entries become empty, from the bottom
        for i in non_empty[: len(non_empty) - n_layers]:
            out[i]["empty_layer"] = True
    elif len(non_empty) < n_layers:
        # layers without history (e.g. from a base image without any): prepend generic ones
        missing = n_layers - len(non_empty)
        out = [{"created_by": "", "comment": "buildkit.exporter.image.v0"}
               for _ in range(missing)] + out
    if created is not None:
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


def stamp_history(history: list[dict[str, Any]], layer_times: list[float]) -> str | None:
    """Give undated history entries BuildKit's times; returns the image's ``created``.

    A layer's entry gets the time its layer was made (the cached snapshot's, so a fully
    cached rebuild gives the same config, hence the same image ID, as with BuildKit). An
    entry without a layer gets the time of the first dated entry after it when it comes
    before any new layer, else the previous dated entry's. The image is as old as its
    last entry. None when nothing is dated.
    """
    layers = [h for h in history if not h.get("empty_layer")]
    for h, when in zip(layers, layer_times, strict=False):
        h.setdefault("created", rfc3339(when))
    created: str | None = None
    undated_seen = False
    for h in history:
        if "created" in h:
            created = h["created"]
            if undated_seen:
                break
        else:
            undated_seen = True
    if created is None:
        return None
    undated_seen = False
    for h in history:
        if "created" in h:
            if undated_seen:
                created = h["created"]
        else:
            undated_seen = True
            h["created"] = created
    return str(history[-1]["created"]) if history else created


def make_image(store: ContentStore, image_config: dict[str, Any], layers: list[LayerBlob], *,
               os_: str, arch: str, variant: str = "", oci: bool = True,
               source_date_epoch: int | None = None,
               annotations: dict[str, str] | None = None,
               layer_times: list[float] | None = None) -> BuiltImage:
    """Write config and manifest blobs to ``store``; returns them with their descriptors.

    ``layer_times``: when each layer's snapshot was made (see :func:`stamp_history`);
    without them (or with ``source_date_epoch``) undated entries get the current time.
    """
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
    if source_date_epoch is None and layer_times is not None and len(layer_times) == len(layers):
        history = reconcile_history(cfg.get("history", []), len(layers), None)
        created = stamp_history(history, layer_times) or created
    else:
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
