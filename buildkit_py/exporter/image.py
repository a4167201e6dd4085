"""Assemble an image (config + manifest) from a build result's layer blobs."""

from __future__ import annotations

import copy
import re
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
    """Make the non-empty history entries as many as the layers (the image spec pairs
    them in order): surplus ones become empty from the bottom, missing ones are added
    at the bottom. Undated entries get ``created`` (None: left undated, for
    :func:`stamp_history`)."""
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


_HISTORY_KEYS = ("created", "created_by", "author", "comment", "empty_layer")


def _history_entry(h: dict[str, Any]) -> tuple[Any, ...]:
    """The fields of a history entry BuildKit compares (Go's struct, zero values dropped)."""
    return tuple(h.get(k) or None for k in _HISTORY_KEYS)


def _later_than(stamp: Any, epoch: int) -> bool:
    """Whether RFC 3339 time ``stamp`` is after Unix time ``epoch`` (unparsable: yes)."""
    try:
        # fromisoformat takes at most 6 fractional digits; Go writes up to 9
        text = re.sub(r"(\.\d{6})\d+", r"\1", str(stamp)).replace("Z", "+00:00")
        when = datetime.fromisoformat(text)
    except ValueError:
        return True
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when > datetime.fromtimestamp(epoch, tz=UTC)


def clamp_history(history: list[dict[str, Any]], base_history: list[dict[str, Any]],
                  epoch: int, created: str) -> None:
    """SOURCE_DATE_EPOCH on history as BuildKit's exporter applies it: the leading
    entries equal to the base image's keep their times, every later entry that is
    undated or dated after the epoch gets ``created`` (the epoch)."""
    diverged = False
    for i, h in enumerate(history):
        if (not diverged and i < len(base_history)
                and _history_entry(h) == _history_entry(base_history[i])):
            continue
        diverged = True
        if "created" not in h or _later_than(h["created"], epoch):
            h["created"] = created


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
               layer_times: list[float] | None = None,
               base_history: list[dict[str, Any]] | None = None) -> BuiltImage:
    """Write config and manifest blobs to ``store``; returns them with their descriptors.

    ``layer_times``: when each layer's snapshot was made (see :func:`stamp_history`);
    without them (or with ``source_date_epoch``) undated entries get the current time.
    ``base_history``: the base image's history, whose entries SOURCE_DATE_EPOCH leaves as
    they are (see :func:`clamp_history`).
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
    # no layers: Go marshals the nil slice as null, and so does BuildKit's config
    cfg["rootfs"] = {"type": "layers", "diff_ids": [layer.diff_id for layer in layers] or None}
    if source_date_epoch is None and layer_times is not None and len(layer_times) == len(layers):
        history = reconcile_history(cfg.get("history", []), len(layers), None)
        created = stamp_history(history, layer_times) or created
    else:
        history = reconcile_history(cfg.get("history", []), len(layers), created)
    if source_date_epoch is not None:
        clamp_history(history, base_history or [], source_date_epoch, created)
        # BuildKit's frontend leaves the image undated and its exporter dates it as its
        # last dated history entry: the base's own time for an image that adds nothing
        created = next((str(h["created"]) for h in reversed(history) if "created" in h),
                       created)
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
