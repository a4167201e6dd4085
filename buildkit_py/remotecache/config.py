"""The cache config (``application/vnd.buildkit.cacheconfig.v0``) as BuildKit lays it out.

``layers``: the layer blobs, each with its parent's index (-1 for a base layer; Go's
``omitempty`` drops a parent of 0, so an absent parent means 0) and annotations (media
type, diff ID, size, creation time). ``records``: one per cache key, the result as the
index of its top layer (that layer with all its parents), the creation time, and
optionally the links to the records of its inputs. The *format* is BuildKit's; the keys
are bkpy's own (``solver.cache_key``), so the config says so in a top-level ``bkpy``
object that BuildKit ignores: the key version, and the content checksums a consumer's
key used of an input (input edge key + selectors -> digest), which let an importing
build compute a key without downloading the input's layers, and the portable cache
mounts (cache id -> a base layer holding the directory; ``remotecache.mounts``).

Inline cache (``moby.buildkit.cache.v0`` in an image config): the records array only,
as a JSON byte string (base64, Go's ``[]byte``); the layers are the image's own.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from buildkit_py.errors import UserError
from buildkit_py.solver.cache_key import KEY_VERSION

MEDIA_TYPE = "application/vnd.buildkit.cacheconfig.v0"
INLINE_KEY = "moby.buildkit.cache.v0"
BKPY_FIELD = "bkpy"
OUR_KEYS = KEY_VERSION.decode()
ANN_UNCOMPRESSED = "containerd.io/uncompressed"
ANN_CREATED = "buildkit/createdat"


class CacheFormatError(UserError):
    """A cache config that cannot be read."""


@dataclass(frozen=True)
class CacheLayer:
    blob: str
    parent: int = -1  # index into layers; -1: a base layer
    media_type: str = ""
    diff_id: str = ""
    size: int = 0
    created_at: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"blob": self.blob}
        if self.parent != 0:  # Go's omitempty
            out["parent"] = self.parent
        ann: dict[str, Any] = {}
        if self.media_type:
            ann["mediaType"] = self.media_type
        if self.diff_id:
            ann["diffID"] = self.diff_id
        if self.size:
            ann["size"] = self.size
        if self.created_at:
            ann["createdAt"] = self.created_at
        if ann:
            out["annotations"] = ann
        return out

    @classmethod
    def from_json(cls, doc: Any) -> CacheLayer:
        if not isinstance(doc, dict) or not isinstance(doc.get("blob"), str):
            raise CacheFormatError(f"cache layer {doc!r} has no blob")
        ann = doc.get("annotations") or {}
        if not isinstance(ann, dict):
            ann = {}
        return cls(doc["blob"], int(doc.get("parent", 0)), str(ann.get("mediaType", "")),
                   str(ann.get("diffID", "")), int(ann.get("size", 0) or 0),
                   str(ann.get("createdAt", "")))


@dataclass(frozen=True)
class CacheInput:
    selector: str
    link: int  # index into records


@dataclass(frozen=True)
class CacheRecord:
    digest: str  # our edge key
    layer: int | None = None  # top layer of the result; None: no layers (empty result)
    created_at: str = ""
    inputs: tuple[tuple[CacheInput, ...], ...] = ()
    has_result: bool = True  # False: a key-graph node only (no stored result)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.has_result and self.layer is not None:
            res: dict[str, Any] = {"layer": self.layer}
            if self.created_at:
                res["createdAt"] = self.created_at
            out["layers"] = [res]
        out["digest"] = self.digest
        if self.inputs:
            out["inputs"] = [[{"selector": i.selector, "link": i.link} if i.selector
                              else {"link": i.link} for i in alts] for alts in self.inputs]
        return out

    @classmethod
    def from_json(cls, doc: Any) -> CacheRecord:
        if not isinstance(doc, dict) or not isinstance(doc.get("digest"), str):
            raise CacheFormatError(f"cache record {doc!r} has no digest")
        results = doc.get("layers") or []
        layer = None
        created = ""
        if results:
            first = results[0]
            layer = int(first.get("layer", 0))
            created = str(first.get("createdAt", ""))
        inputs = tuple(tuple(CacheInput(str(i.get("selector", "")), int(i.get("link", 0)))
                             for i in alts or []) for alts in doc.get("inputs") or [])
        # a record without layers is a key node unless bkpy marked it an empty result
        return cls(doc["digest"], layer, created, inputs, has_result=bool(results))


@dataclass(frozen=True)
class Checksum:
    """A content checksum a consumer's key used of an input's result."""

    key: str  # the input's edge key
    selectors: tuple[str, ...]
    digest: str


@dataclass
class CacheConfig:
    layers: list[CacheLayer] = field(default_factory=list)
    records: list[CacheRecord] = field(default_factory=list)
    key_version: str | None = OUR_KEYS  # None: written by another builder
    empty: list[str] = field(default_factory=list)  # keys whose result is the empty fs
    checksums: list[Checksum] = field(default_factory=list)
    # portable cache mounts: cache id -> index of its (base) layer (remotecache/mounts.py)
    mounts: dict[str, int] = field(default_factory=dict)

    @property
    def ours(self) -> bool:
        return self.key_version == OUR_KEYS

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.layers:
            out["layers"] = [layer.to_json() for layer in self.layers]
        if self.records:
            out["records"] = [r.to_json() for r in self.records]
        ours: dict[str, Any] = {"keyVersion": self.key_version or OUR_KEYS}
        if self.empty:
            ours["empty"] = sorted(self.empty)
        if self.checksums:
            ours["checksums"] = [{"key": c.key, "selectors": list(c.selectors),
                                  "digest": c.digest} for c in self.checksums]
        if self.mounts:
            ours["cacheMounts"] = [{"id": k, "layer": v} for k, v in self.mounts.items()]
        out[BKPY_FIELD] = ours
        return out

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, doc: Any) -> CacheConfig:
        if not isinstance(doc, dict):
            raise CacheFormatError("the cache config is not a JSON object")
        try:
            layers = [CacheLayer.from_json(x) for x in doc.get("layers") or []]
            records = [CacheRecord.from_json(x) for x in doc.get("records") or []]
            ours = doc.get(BKPY_FIELD)
            version = None
            empty: list[str] = []
            checksums: list[Checksum] = []
            mounts: dict[str, int] = {}
            if isinstance(ours, dict):
                mounts = {str(m["id"]): int(m["layer"]) for m in ours.get("cacheMounts") or []}
                version = str(ours.get("keyVersion") or "") or None
                empty = [str(k) for k in ours.get("empty") or []]
                checksums = [Checksum(str(c["key"]), tuple(c.get("selectors") or ()),
                                      str(c["digest"])) for c in ours.get("checksums") or []]
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            raise CacheFormatError(f"malformed cache config: {err}") from None
        for i, layer in enumerate(layers):
            if layer.parent >= len(layers) or layer.parent < -1 or layer.parent == i:
                raise CacheFormatError(f"cache layer {i} has a bad parent {layer.parent}")
        for r in records:
            if r.layer is not None and not 0 <= r.layer < len(layers):
                raise CacheFormatError(f"cache record {r.digest} names layer {r.layer} of "
                                       f"{len(layers)}")
        for cache_id, i in mounts.items():
            if not 0 <= i < len(layers):
                raise CacheFormatError(f"cache mount {cache_id!r} names layer {i} of "
                                       f"{len(layers)}")
        return cls(layers, records, version, empty, checksums, mounts)

    @classmethod
    def from_bytes(cls, data: bytes) -> CacheConfig:
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as err:
            raise CacheFormatError(f"the cache config is not JSON: {err}") from None
        return cls.from_json(doc)

    def chain(self, layer: int) -> list[int]:
        """Layer indexes from the base up to ``layer``."""
        out: list[int] = []
        seen: set[int] = set()
        i = layer
        while i != -1:
            if i in seen:
                raise CacheFormatError("cache layers form a circle")
            seen.add(i)
            out.append(i)
            i = self.layers[i].parent
        out.reverse()
        return out


def config_of(manifest: dict[str, Any], read: Callable[[dict[str, Any]], bytes],
              ) -> tuple[CacheConfig, dict[str, dict[str, Any]]] | None:
    """The cache config of a cache manifest or legacy cache index (its config blob read
    with ``read``) and its layer descriptors by blob digest; None: neither."""
    cfg_desc = manifest.get("config")
    if isinstance(cfg_desc, dict) and cfg_desc.get("mediaType") == MEDIA_TYPE:
        descs = {str(d["digest"]): d for d in manifest.get("layers") or []}
        return CacheConfig.from_bytes(read(cfg_desc)), descs
    entries = manifest.get("manifests")
    if isinstance(entries, list):
        cfgs = [d for d in entries if isinstance(d, dict) and d.get("mediaType") == MEDIA_TYPE]
        if cfgs:
            descs = {str(d["digest"]): d for d in entries if d is not cfgs[0]}
            return CacheConfig.from_bytes(read(cfgs[0])), descs
    return None


def inline_value(cfg: CacheConfig) -> str:
    """The image-config value of inline cache: the records (and bkpy's own field) as a
    JSON byte string, base64 as Go marshals ``[]byte``. Layers are the image's."""
    doc = cfg.to_json()
    doc.pop("layers", None)
    return base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()


def parse_inline(value: Any, image_layers: list[CacheLayer]) -> CacheConfig:
    """The cache config of an image with inline cache: ``image_layers`` are its manifest's
    layers (each the parent of the next)."""
    if not isinstance(value, str):
        raise CacheFormatError("inline cache value is not a string")
    try:
        doc = json.loads(base64.b64decode(value, validate=True))
    except (ValueError, UnicodeDecodeError) as err:
        raise CacheFormatError(f"inline cache is not base64 JSON: {err}") from None
    if isinstance(doc, list):  # BuildKit writes the records array itself
        doc = {"records": doc}
    if not isinstance(doc, dict):
        raise CacheFormatError("inline cache is not a JSON object or array")
    doc["layers"] = [layer.to_json() for layer in image_layers]
    return CacheConfig.from_json(doc)
