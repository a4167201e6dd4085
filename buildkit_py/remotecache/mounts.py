"""Portable cache mounts (``--cache-to ...,cache-mounts=true``): the contents of a build's
``RUN --mount=type=cache`` directories travel with its build cache.

BuildKit keeps cache mounts on the builder that made them (buildkit#1512), so a package
manager's cache is lost on every fresh CI runner. bkpy exports each cache mount the build
used as one base layer blob (the whole directory) listed under the config's
``bkpy.cacheMounts``; an importing build fills every cache mount it uses but does not
have yet from it, before its steps run. A cache mount that exists locally always wins:
an import never overwrites one. Only unseeded mounts travel (``from=`` mounts are keyed
by a local result, meaningless elsewhere).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildkit_py.content.store import ContentStore
from buildkit_py.errors import BuildError
from buildkit_py.executor.cache_mounts import CacheMountManager
from buildkit_py.exporter.layers import ExportOptions, media_type_for
from buildkit_py.exporter.manifest import Descriptor
from buildkit_py.remotecache.config import ANN_UNCOMPRESSED, CacheConfig, CacheLayer
from buildkit_py.snapshot import Compression, apply_layer, diff, export_layer

ANN_CACHE_ID = "dev.bkpy.cachemount.id"


@dataclass(frozen=True)
class MountBlob:
    """One cache mount's directory as a layer blob in the content store."""

    cache_id: str
    descriptor: Descriptor
    diff_id: str


def export_mounts(ids: Sequence[str], mounts: CacheMountManager, store: ContentStore,
                  opts: ExportOptions) -> list[MountBlob]:
    """A blob per cache mount in ``ids`` that exists here (read under a shared lock, so
    a ``locked`` user finishes first)."""
    out: list[MountBlob] = []
    for cache_id in ids:
        lease = mounts.read_existing(cache_id)
        if lease is None:
            continue
        try:
            with store.writer() as w:
                desc = export_layer(diff(None, lease.path), lease.path, w,
                                    compression=Compression(opts.compression), level=opts.level)
        finally:
            lease.release()
        media = media_type_for(opts.compression, opts.oci_mediatypes)
        out.append(MountBlob(cache_id, Descriptor(
            media, desc.digest, desc.size,
            annotations={ANN_UNCOMPRESSED: desc.diff_id, ANN_CACHE_ID: cache_id}), desc.diff_id))
    return out


def add_mounts(cfg: CacheConfig, layers: list[Descriptor], blobs: Sequence[MountBlob]) -> None:
    """List ``blobs`` in a cache config (each a base layer) and its manifest's layers."""
    for b in blobs:
        cfg.mounts[b.cache_id] = len(cfg.layers)
        cfg.layers.append(CacheLayer(b.descriptor.digest, -1, b.descriptor.media_type,
                                     b.diff_id, b.descriptor.size))
        layers.append(b.descriptor)


def fill_mounts(cfg: CacheConfig, descs: dict[str, dict[str, Any]], ids: Sequence[str],
                mounts: CacheMountManager, store: ContentStore,
                fetch: Callable[[list[dict[str, Any]]], None],
                step: Callable[[str], Any]) -> list[str]:
    """Fill the cache mounts in ``ids`` that the config carries and this builder lacks;
    returns the ids filled. A blob whose content is not its diff ID fails the build."""
    filled: list[str] = []
    for cache_id in ids:
        index = cfg.mounts.get(cache_id)
        if index is None or mounts.has(cache_id):
            continue
        layer = cfg.layers[index]
        desc = {"mediaType": layer.media_type, "digest": layer.blob, "size": layer.size,
                **descs.get(layer.blob, {})}
        with step(f"importing cache mount {cache_id}"):
            if not store.has(layer.blob):
                fetch([desc])

            def fill(tmp: Path, layer: CacheLayer = layer, cache_id: str = cache_id) -> None:
                with store.open(layer.blob) as f:
                    applied = apply_layer(f, tmp)
                if layer.diff_id and applied.diff_id != layer.diff_id:
                    raise BuildError(f"imported cache mount {cache_id!r}: its blob "
                                     f"{layer.blob} holds {applied.diff_id}, the cache says "
                                     f"{layer.diff_id}", hint="re-export the cache")

            if mounts.fill_new(cache_id, fill):
                filled.append(cache_id)
    return filled
