"""One cache out of several: what the nodes of a multi-node build exported, each for its
own platforms, merged into the one cache the user's ``--cache-to`` names.

Each node exports its part where the client can read it without it counting as the
cache yet: a registry node pushes its cache manifest untagged (``push-by-digest=true``;
the digest comes back in the build's metadata under :data:`PUSHED_KEY`), a ``type=local``
node writes it under a temporary tag of the client's directory. The client then reads
every part's config, merges them (:func:`merge`) and writes the merged config and
manifest under the tag asked for. The layer blobs are already there, each node having
put its own (content addressed, so shared ones once).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buildkit_py.content.store import ContentStore
from buildkit_py.exporter.manifest import Descriptor
from buildkit_py.exporter.oci_layout import blob_path
from buildkit_py.registry.reference import parse_reference
from buildkit_py.remotecache.config import (
    MEDIA_TYPE,
    CacheConfig,
    CacheFormatError,
    CacheInput,
    CacheRecord,
)
from buildkit_py.remotecache.export import (
    REF_NAME,
    Exported,
    cache_manifest,
    push_registry,
    read_manifest,
    write_local,
)

if TYPE_CHECKING:
    from buildkit_py.registry.client import RegistryClient

# build metadata: [{"ref": REF, "descriptor": {...}}] per cache manifest pushed by digest
PUSHED_KEY = "bkpy.cache.pushed"


def merge(parts: Sequence[Exported]) -> Exported:
    """One cache holding every record of ``parts``, in their order.

    Layers are concatenated with their parent indexes shifted; a layer already there
    (the same blob on the same parent chain) is kept once. Records are concatenated with
    their layer and input-link indexes shifted; a record already there (same key, same
    result layer) is kept once. Empty results, content checksums and cache mounts are
    the union (a cache mount id in several parts keeps the first part's).
    """
    if not parts:
        raise ValueError("nothing to merge")
    versions = {p.config.key_version for p in parts}
    if len(versions) != 1:
        raise CacheFormatError("the caches to merge were keyed by different bkpy versions "
                               f"({', '.join(sorted(str(v) for v in versions))})")
    out = CacheConfig(key_version=parts[0].config.key_version)
    descs: list[Descriptor] = []
    layer_at: dict[tuple[str, int], int] = {}  # (blob, merged parent) -> merged index
    record_at: dict[tuple[str, int | None, bool], int] = {}
    for part in parts:
        cfg = part.config
        if len(part.layers) != len(cfg.layers):
            raise CacheFormatError("a cache's manifest and config list different layers")
        layer_map: dict[int, int] = {}
        for top in range(len(cfg.layers)):
            parent = -1
            for i in cfg.chain(top):  # base first: each parent is placed before its child
                if i not in layer_map:
                    key = (cfg.layers[i].blob, parent)
                    if key not in layer_at:
                        layer_at[key] = len(out.layers)
                        out.layers.append(dataclasses.replace(cfg.layers[i], parent=parent))
                        descs.append(part.layers[i])
                    layer_map[i] = layer_at[key]
                parent = layer_map[i]
        # every record's place first: an input may link to a record listed after it
        record_map: dict[int, int] = {}
        added: list[int] = []
        for k, r in enumerate(cfg.records):
            layer = layer_map[r.layer] if r.layer is not None else None
            rkey = (r.digest, layer, r.has_result)
            if rkey not in record_at:
                record_at[rkey] = len(out.records) + len(added)
                added.append(k)
            record_map[k] = record_at[rkey]
        for k in added:
            r = cfg.records[k]
            inputs = tuple(tuple(CacheInput(i.selector, record_map[i.link]) for i in alts
                                 if i.link in record_map) for alts in r.inputs)
            out.records.append(CacheRecord(
                r.digest, layer_map[r.layer] if r.layer is not None else None, r.created_at,
                inputs, has_result=r.has_result))
        out.empty.extend(k for k in cfg.empty if k not in out.empty)
        out.checksums.extend(c for c in cfg.checksums if c not in out.checksums)
        for cache_id, i in cfg.mounts.items():
            out.mounts.setdefault(cache_id, layer_map[i])
    return Exported(out, descs)


# registry ---------------------------------------------------------------------------------


def pushed(metadata: dict[str, Any], ref: str) -> Descriptor | None:
    """The cache manifest a node pushed by digest for ``ref``, from its build metadata."""
    for entry in metadata.get(PUSHED_KEY) or []:
        if isinstance(entry, dict) and entry.get("ref") == ref:
            d = entry.get("descriptor") or {}
            return Descriptor(str(d["mediaType"]), str(d["digest"]), int(d["size"]))
    return None


def read_registry(registry: RegistryClient, ref_text: str, digest: str) -> Exported:
    """The cache manifest ``digest`` in ``ref_text``'s repository, and its config."""
    ref = parse_reference(ref_text)
    at = f"{ref.name}@{digest}"
    _, body = registry.resolve(parse_reference(at))

    def read(d: dict[str, Any]) -> bytes:
        return registry.fetch_blob(ref, Descriptor(str(d["mediaType"]), str(d["digest"]),
                                                   int(d["size"])))

    return read_manifest(_document(body, at), read, at)


def push_merged(registry: RegistryClient, ref_text: str, merged: Exported, work: Path, *,
                image_manifest: bool, oci: bool) -> Descriptor:
    """Push the merged config and its manifest under ``ref_text`` (the layers are there)."""
    with ContentStore(work) as store:
        desc, body = cache_manifest(merged, store, image_manifest=image_manifest, oci=oci)
        push_registry(registry, store, ref_text, merged, desc, body)
    return desc


# local ------------------------------------------------------------------------------------


def read_local(dest: Path, tag: str) -> Exported:
    """The cache under ``tag`` in the OCI layout ``dest``."""
    entry = _tagged(_index(dest), tag)
    if entry is None:
        raise CacheFormatError(f"{dest}: no cache tagged {tag!r}")

    def read(d: dict[str, Any]) -> bytes:
        return (dest / blob_path(str(d["digest"]))).read_bytes()

    where = f"{dest} (tag {tag})"
    return read_manifest(_document(read(entry), where), read, where)


def write_merged_local(dest: Path, tag: str, merged: Exported, drop: Sequence[str],
                       work: Path, *, image_manifest: bool, oci: bool) -> Descriptor:
    """Write the merged config and manifest into ``dest`` under ``tag``, and drop the
    tags in ``drop`` with their manifests and configs (not their layers) unless another
    tag still uses them."""
    index = _index(dest)
    gone = [e for t in drop if (e := _tagged(index, t)) is not None]
    with ContentStore(work) as store:
        desc, _ = cache_manifest(merged, store, image_manifest=image_manifest, oci=oci)
        write_local(store, dest, tag, merged, desc, drop)
    kept = _index(dest).get("manifests") or []
    used: set[str] = set()
    for e in kept:
        used.add(str(e.get("digest")))
        try:
            used.update(_children(_document((dest / blob_path(str(e["digest"]))).read_bytes(),
                                            str(dest))))
        except (OSError, KeyError, ValueError, CacheFormatError):
            continue
    for e in gone:
        path = dest / blob_path(str(e["digest"]))
        try:
            doomed = [str(e["digest"]), *_configs(_document(path.read_bytes(), str(dest)))]
        except (OSError, CacheFormatError):
            continue
        for digest in doomed:
            if digest not in used:
                (dest / blob_path(digest)).unlink(missing_ok=True)
    return desc


def _index(dest: Path) -> dict[str, Any]:
    try:
        index = json.loads((dest / "index.json").read_bytes())
    except (OSError, ValueError) as err:
        raise CacheFormatError(f"{dest}/index.json: {err}") from None
    if not isinstance(index, dict):
        raise CacheFormatError(f"{dest}/index.json is not a JSON object")
    return index


def _tagged(index: dict[str, Any], tag: str) -> dict[str, Any] | None:
    found = [m for m in index.get("manifests") or []
             if isinstance(m, dict) and (m.get("annotations") or {}).get(REF_NAME) == tag]
    return found[-1] if found else None


def _document(body: bytes, where: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError as err:
        raise CacheFormatError(f"{where}: not JSON: {err}") from None
    if not isinstance(doc, dict):
        raise CacheFormatError(f"{where}: not a JSON object")
    return doc


def _children(doc: dict[str, Any]) -> list[str]:
    """Every digest a manifest or index names."""
    out = [str(d.get("digest")) for key in ("layers", "manifests")
           for d in doc.get(key) or [] if isinstance(d, dict)]
    if isinstance(doc.get("config"), dict):
        out.append(str(doc["config"].get("digest")))
    return out


def _configs(doc: dict[str, Any]) -> list[str]:
    """The cache config a cache manifest or legacy index names (its layers stay)."""
    return [str(d.get("digest")) for d in [doc.get("config"), *(doc.get("manifests") or [])]
            if isinstance(d, dict) and d.get("mediaType") == MEDIA_TYPE]
