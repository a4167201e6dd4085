"""Image manifests, indexes and configs as exact bytes (serialised once, digested once)."""

from __future__ import annotations

import hashlib
import json
import re
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


# Characters Go's encoding/json escapes beyond JSON's minimum: HTML's & < > (as
# \u0026 ...), U+2028/U+2029, and control characters as \u00XX except \b \f \n \r \t.
_GO_ESCAPES = {**{chr(c): f"\\u{c:04x}" for c in range(0x20)},
               "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               '"': '\\"', "\\": "\\\\", "&": "\\u0026", "<": "\\u003c", ">": "\\u003e",
               "\u2028": "\\u2028", "\u2029": "\\u2029"}
_GO_ESCAPE_RE = re.compile("[\x00-\x1f\"\\\\&<>\u2028\u2029\ud800-\udfff]")


def _go_escape(m: re.Match[str]) -> str:
    # a lone surrogate is an undecodable byte (surrogateescape): Go writes U+FFFD for it
    return _GO_ESCAPES.get(m.group(), "\\ufffd")


def _go_string(s: str) -> str:
    return '"' + _GO_ESCAPE_RE.sub(_go_escape, s) + '"'


def go_json(obj: Any) -> bytes:
    """Compact JSON as Go's ``json.Marshal`` writes it: keys in the order given (a Go
    struct's field order; sort a Go map's keys before calling) and Go's escaping."""
    return "".join(_go_parts(obj, [])).encode("utf-8", "surrogatepass")


def _go_parts(obj: Any, out: list[str]) -> list[str]:
    if isinstance(obj, str):
        out.append(_go_string(obj))
    elif isinstance(obj, dict):
        out.append("{")
        for i, (k, v) in enumerate(obj.items()):
            if i:
                out.append(",")
            out.append(_go_string(str(k)))
            out.append(":")
            _go_parts(v, out)
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for i, v in enumerate(obj):
            if i:
                out.append(",")
            _go_parts(v, out)
        out.append("]")
    elif obj is None or isinstance(obj, (bool, int, float)):
        out.append(json.dumps(obj))
    else:
        raise TypeError(f"cannot serialise {type(obj).__name__} as JSON")
    return out


# Field order of the image config as BuildKit writes it: the exporter re-marshals the
# top level as a Go map (sorted keys) and each nested value from its Go struct
# (moby's docker-image-spec and OCI image-spec types).
_CONFIG_FIELDS = ("User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir",
                  "Labels", "StopSignal", "ArgsEscaped", "Healthcheck", "OnBuild", "Shell")
_HEALTHCHECK_FIELDS = ("Test", "Interval", "Timeout", "StartPeriod", "StartInterval", "Retries")
_HISTORY_FIELDS = ("created", "created_by", "author", "comment", "empty_layer")
_ROOTFS_FIELDS = ("type", "diff_ids")
_MAP_FIELDS = ("ExposedPorts", "Volumes", "Labels")


def _in_order(d: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """``d`` with the known ``fields`` first, in that order, then any others."""
    out = {k: d[k] for k in fields if k in d}
    out.update((k, v) for k, v in d.items() if k not in out)
    return out


_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$",
                      re.IGNORECASE)


def _go_time(value: Any) -> Any:
    """An RFC 3339 time as Go re-marshals it (RFC3339Nano: no trailing zeros in the
    fraction, "Z" for a zero offset); anything else unchanged."""
    m = _RFC3339.match(value) if isinstance(value, str) else None
    if m is None:
        return value
    whole, fraction, zone = m.groups()
    fraction = (fraction or "")[:9].rstrip("0")
    zone = "Z" if zone.upper() in ("Z", "+00:00", "-00:00") else zone
    return whole.upper() + (f".{fraction}" if fraction else "") + zone


def _go_ordered_config(config: dict[str, Any]) -> dict[str, Any]:
    out = {k: config[k] for k in sorted(config)}
    if "created" in out:
        out["created"] = _go_time(out["created"])
    inner = out.get("config")
    if isinstance(inner, dict):
        inner = _in_order(inner, _CONFIG_FIELDS)
        for k in _MAP_FIELDS:
            if isinstance(inner.get(k), dict):
                inner[k] = {mk: inner[k][mk] for mk in sorted(inner[k])}
        if isinstance(inner.get("Healthcheck"), dict):
            inner["Healthcheck"] = _in_order(inner["Healthcheck"], _HEALTHCHECK_FIELDS)
        out["config"] = inner
    if isinstance(out.get("history"), list):
        out["history"] = [_in_order(h, _HISTORY_FIELDS) if isinstance(h, dict) else h
                          for h in out["history"]]
        for h in out["history"]:
            if isinstance(h, dict) and "created" in h:
                h["created"] = _go_time(h["created"])
    if isinstance(out.get("rootfs"), dict):
        out["rootfs"] = _in_order(out["rootfs"], _ROOTFS_FIELDS)
    return out


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
    """The image config serialised byte for byte as BuildKit does, so that the same
    config gives the same image ID."""
    data = go_json(_go_ordered_config(config))
    return Blob(data, Descriptor(mt.OCI_CONFIG if oci else mt.DOCKER_CONFIG,
                                 sha256_digest(data), len(data)))


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
    if annotations:  # docker's media type too, as BuildKit writes them
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
