"""Cache export (``--cache-to``): the records of a build and the layer blobs of their
results, in BuildKit's remote-cache layout.

A record is one of our edge keys and the layer chain of its stored result. ``mode=min``
exports the records whose result is part of an exported image (a prefix of a platform's
head chain, so no extra blobs), ``mode=max`` every keyed vertex of the build with a
stored result (upstream vertices that were only found cached included). Either way the
content checksums the exported keys used go along, so an importer can key the same
steps without downloading their inputs. Layer blobs come from ``exporter.layers``: a
layer already exported with the same options, or a pulled base layer, keeps its blob.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buildkit_py.content.store import ContentStore
from buildkit_py.errors import UsageError
from buildkit_py.exporter.image import rfc3339
from buildkit_py.exporter.layers import (
    ExportOptions,
    LayerBlob,
    LayerCache,
    export_chain,
    snapshot_created,
)
from buildkit_py.exporter.manifest import Descriptor, canonical_json
from buildkit_py.exporter.oci_layout import LAYOUT, blob_path, place_blob
from buildkit_py.registry import mediatypes as mt
from buildkit_py.registry.reference import parse_reference
from buildkit_py.remotecache.config import (
    ANN_CREATED,
    ANN_UNCOMPRESSED,
    MEDIA_TYPE,
    CacheConfig,
    CacheFormatError,
    CacheInput,
    CacheLayer,
    CacheRecord,
    Checksum,
    config_of,
    inline_value,
)
from buildkit_py.remotecache.mounts import MountBlob, add_mounts
from buildkit_py.remotecache.spec import CacheExport
from buildkit_py.snapshot import DBSnapshotter, SnapshotNotFoundError
from buildkit_py.solver.cache import CacheManager
from buildkit_py.solver.solver import SolveResult

if TYPE_CHECKING:
    from buildkit_py.registry.client import RegistryClient

REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class Entry:
    """One exported record: an edge key and its result's snapshot chain (bottom first)."""

    key: str
    chain: tuple[str, ...]


def collect(solves: Sequence[SolveResult], heads: Sequence[str | None], cache: CacheManager,
            chain: Callable[[str], list[str]], mode: str) -> list[Entry]:
    """The records to export of every platform's solve (``heads``: their head snapshots)."""
    head_chains = [tuple(chain(h)) if h else () for h in heads]
    keys = list(dict.fromkeys(k for s in solves for outs in s.edge_keys.values()
                              for k in outs.values()))
    found = cache.existing(keys)
    out: list[Entry] = []
    for key in keys:
        if key not in found:
            continue
        rec = cache.load(key)
        if rec is None:
            continue
        if rec.result_id == "scratch":
            keys_chain: tuple[str, ...] = ()
        elif rec.result_id.startswith("snap:"):
            try:
                keys_chain = tuple(chain(rec.result_id.removeprefix("snap:")))
            except SnapshotNotFoundError:  # the snapshot is gone: nothing to export
                continue
        else:
            continue  # a local context: never a stored result
        if mode == "min" and not any(h[:len(keys_chain)] == keys_chain for h in head_chains):
            continue
        out.append(Entry(key, keys_chain))
    return out


@dataclass
class Exported:
    config: CacheConfig
    layers: list[Descriptor]  # one per config layer, with the cache annotations


def layer_options(spec: CacheExport) -> ExportOptions:
    level = spec.attrs.get("compression-level")
    return ExportOptions(compression=spec.attrs.get("compression", "gzip"),
                         level=int(level) if level is not None else None,
                         force_compression=spec.attrs.get("force-compression") == "true",
                         oci_mediatypes=spec.oci)


def build_config(entries: Sequence[Entry], cache: CacheManager, sn: DBSnapshotter,
                 store: ContentStore, layer_cache: LayerCache,
                 opts: ExportOptions) -> Exported:
    """The cache config of ``entries`` (layer blobs made or found as needed)."""
    cfg = CacheConfig()
    layers: list[Descriptor] = []
    index: dict[str, int] = {}
    for e in entries:
        if not e.chain or e.chain[-1] in index:
            continue
        blobs = export_chain(sn, store, layer_cache, list(e.chain), opts)
        for j, (snap, blob) in enumerate(zip(e.chain, blobs, strict=True)):
            if snap in index:
                continue
            index[snap] = len(cfg.layers)
            created = rfc3339(snapshot_created(sn, snap))
            cfg.layers.append(CacheLayer(blob.digest, index[e.chain[j - 1]] if j else -1,
                                         blob.media_type, blob.diff_id, blob.size, created))
            layers.append(_layer_desc(blob, created))
    _add_records(cfg, entries, cache, lambda snap: index[snap])
    return Exported(cfg, layers)


def _add_records(cfg: CacheConfig, entries: Sequence[Entry], cache: CacheManager,
                 layer_of: Callable[[str], int]) -> None:
    """A record per entry (its top layer by ``layer_of``), with links to the records of
    its inputs and the content checksums its key used."""
    rec_index = {e.key: i for i, e in enumerate(entries)}
    checksums: dict[tuple[str, tuple[str, ...]], Checksum] = {}
    for e in entries:
        inputs: list[tuple[CacheInput, ...]] = []
        links = cache.links(e.key)
        for link in links[2] if links else []:
            target = link.source if link.content else link.input_key
            if link.content and link.source:
                checksums[(link.source, link.selectors)] = Checksum(
                    link.source, link.selectors, link.input_key)
            inputs.append((CacheInput(",".join(link.selectors), rec_index[target]),)
                          if target in rec_index else ())
        top = layer_of(e.chain[-1]) if e.chain else None
        if top is None:
            cfg.empty.append(e.key)
        created = cfg.layers[top].created_at if top is not None and top < len(cfg.layers) \
            else ""
        cfg.records.append(CacheRecord(e.key, top, created,
                                       tuple(inputs) if any(inputs) else (),
                                       has_result=top is not None))
    cfg.checksums = list(checksums.values())


def _layer_desc(blob: LayerBlob, created: str) -> Descriptor:
    return Descriptor(blob.media_type, blob.digest, blob.size,
                      annotations={ANN_UNCOMPRESSED: blob.diff_id, ANN_CREATED: created})


def cache_manifest(exported: Exported, store: ContentStore, *, image_manifest: bool,
                   oci: bool) -> tuple[Descriptor, bytes]:
    """Write the config blob and the manifest (or legacy index) to ``store``."""
    cfg_bytes = exported.config.to_bytes()
    cfg_desc = Descriptor(MEDIA_TYPE, _digest(cfg_bytes), len(cfg_bytes))
    store.write(cfg_bytes, cfg_desc.digest)
    if image_manifest:
        doc = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
               "config": cfg_desc.to_json(),
               "layers": [d.to_json() for d in exported.layers]}
        media = mt.OCI_MANIFEST
    else:
        media = mt.OCI_INDEX if oci else mt.DOCKER_MANIFEST_LIST
        doc = {"schemaVersion": 2, "mediaType": media,
               "manifests": [*(d.to_json() for d in exported.layers), cfg_desc.to_json()]}
    body = canonical_json(doc)
    desc = Descriptor(media, _digest(body), len(body))
    store.write(body, desc.digest)
    return desc, body


def read_manifest(doc: dict[str, Any], read: Callable[[dict[str, Any]], bytes],
                  where: str) -> Exported:
    """A cache manifest (or legacy index) as written here, its config read with ``read``:
    the config and one layer descriptor per config layer."""
    found = config_of(doc, read)
    if found is None:
        raise CacheFormatError(f"{where} is not a cache manifest")
    cfg, descs = found
    layers = []
    for layer in cfg.layers:
        d = descs.get(layer.blob) or {}
        ann = d.get("annotations")
        layers.append(Descriptor(
            str(d.get("mediaType") or layer.media_type or mt.OCI_LAYER_GZIP), layer.blob,
            int(d.get("size") or layer.size),
            annotations={str(k): str(v) for k, v in ann.items()} if isinstance(ann, dict)
            else {ANN_UNCOMPRESSED: layer.diff_id, ANN_CREATED: layer.created_at}))
    return Exported(cfg, layers)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_registry(registry: RegistryClient, store: ContentStore, ref_text: str,
                  exported: Exported, desc: Descriptor, body: bytes, *,
                  by_digest: bool = False) -> None:
    """Push the blobs the registry lacks, then the manifest under ``ref_text``'s tag (with
    ``by_digest``: untagged, by its digest only, in the same repository)."""
    ref = parse_reference(ref_text)
    if by_digest:
        ref = dataclasses.replace(ref, tag=None, digest=None)
    cfg_bytes = exported.config.to_bytes()
    cfg = Descriptor(MEDIA_TYPE, _digest(cfg_bytes), len(cfg_bytes))
    registry.push_blobs(ref, store, [*exported.layers, cfg], desc.media_type, body)


def write_local(store: ContentStore, dest: Path, tag: str, exported: Exported,
                desc: Descriptor, drop: Collection[str] = ()) -> None:
    """Blobs first, then ``index.json`` with ``tag`` pointing at the cache manifest (other
    entries kept, but those of the tags in ``drop``)."""
    cfg_bytes = exported.config.to_bytes()
    digests = [*(d.digest for d in exported.layers), _digest(cfg_bytes), desc.digest]
    (dest / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    for digest in dict.fromkeys(digests):
        target = dest / blob_path(digest)
        if not target.exists():
            place_blob(store, digest, target)
    index_path = dest / "index.json"
    try:
        index = json.loads(index_path.read_bytes())
        if not isinstance(index, dict):
            raise ValueError("not an object")
    except FileNotFoundError:
        index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}
    except (OSError, ValueError) as err:
        raise UsageError(f"--cache-to type=local,dest={dest}: cannot read index.json: {err}"
                         ) from None
    kept = [m for m in index.get("manifests") or []
            if not (isinstance(m, dict)
                    and (m.get("annotations") or {}).get(REF_NAME) in {tag, *drop})]
    entry = Descriptor(desc.media_type, desc.digest, desc.size, annotations={REF_NAME: tag})
    index["manifests"] = [*kept, entry.to_json()]
    (dest / "oci-layout").write_bytes(LAYOUT)
    tmp = index_path.with_name("index.json.tmp")
    tmp.write_bytes(canonical_json(index))
    tmp.replace(index_path)


def inline_config(entries: Sequence[Entry], head_chain: Sequence[str],
                  cache: CacheManager) -> CacheConfig:
    """Inline cache of one platform's image: the records whose result is a prefix of the
    image's layers, pointing at those layers by position (the image's own blobs)."""
    pos = {snap: i for i, snap in enumerate(head_chain)}
    mine = [e for e in entries if tuple(head_chain[:len(e.chain)]) == e.chain]
    cfg = CacheConfig()
    _add_records(cfg, mine, cache, lambda snap: pos[snap])
    return cfg


def export_cache(spec: CacheExport, entries: Sequence[Entry], *, cache: CacheManager,
                 sn: DBSnapshotter, store: ContentStore, layer_cache: LayerCache,
                 registry: Callable[[], RegistryClient],
                 step: Callable[[str], AbstractContextManager[None]],
                 mount_blobs: Callable[[ExportOptions], list[MountBlob]] | None = None,
                 ) -> Descriptor:
    """Export ``entries`` as ``spec`` asks (registry or local; inline rides in the image),
    with the cache mounts ``mount_blobs`` makes when the spec asks for them; returns the
    cache manifest's descriptor."""
    with step("preparing build cache for export"):
        opts = layer_options(spec)
        exported = build_config(entries, cache, sn, store, layer_cache, opts)
        if spec.cache_mounts and mount_blobs is not None:
            add_mounts(exported.config, exported.layers, mount_blobs(opts))
        desc, body = cache_manifest(exported, store, image_manifest=spec.image_manifest,
                                    oci=spec.oci)
    if spec.type == "registry":
        with step("exporting cache to registry"), \
                step(f"writing cache manifest {desc.digest}"):
            push_registry(registry(), store, spec.attrs["ref"], exported, desc, body,
                          by_digest=spec.by_digest)
    elif spec.type == "local":
        with step("exporting cache to client directory"), \
                step(f"writing cache manifest {desc.digest}"):
            write_local(store, Path(spec.attrs["dest"]), spec.attrs.get("tag") or "latest",
                        exported, desc)
    return desc


def inline_values(solves: Sequence[SolveResult], heads: Sequence[str | None],
                  cache: CacheManager, chain: Callable[[str], list[str]]) -> list[str]:
    """Per platform, the ``moby.buildkit.cache.v0`` value for its image config."""
    entries = collect(solves, heads, cache, chain, "min")
    return [inline_value(inline_config(entries, chain(h) if h else [], cache)) for h in heads]
