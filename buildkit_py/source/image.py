"""Images as sources: resolve a reference to a pinned manifest and config, then unpack
its layers into snapshots (one committed snapshot per layer, named by ChainID, so images
sharing layers share snapshots).

Resolution looks in the local image store first (images built with ``--load`` or
imported), then asks the registry; ``--pull`` skips the local store. Layers are only
fetched when a step actually needs the image's filesystem: a fully cached build pulls
nothing.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from buildkit_py.content.images import ImageStore
from buildkit_py.content.store import ContentStore
from buildkit_py.errors import BuildError, UserError
from buildkit_py.exporter.layers import LayerCache
from buildkit_py.registry import mediatypes as mt
from buildkit_py.registry.platforms import Platform, choose
from buildkit_py.registry.reference import Reference, parse_reference
from buildkit_py.solver.worker import CacheMap, OpContext, Result
from buildkit_py.worker.results import SnapshotResult

if TYPE_CHECKING:
    from buildkit_py.llb import ops_pb2
    from buildkit_py.registry.client import RegistryClient
    from buildkit_py.worker.worker import BuilderWorker

_COMPRESSIONS = {
    mt.OCI_LAYER: "uncompressed", mt.DOCKER_LAYER: "uncompressed",
    mt.OCI_LAYER_GZIP: "gzip", mt.DOCKER_LAYER_GZIP: "gzip",
    mt.DOCKER_FOREIGN_LAYER_GZIP: "gzip", mt.OCI_LAYER_ZSTD: "zstd",
}


@dataclass(frozen=True)
class ImageInfo:
    """A platform manifest with its parsed config, as found locally or in a registry."""

    ref: Reference  # pinned to the manifest digest
    manifest: dict[str, Any]
    config: dict[str, Any]
    from_registry: bool


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else
                   "sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


def _platform(text: str | None) -> Platform:
    from buildkit_py.registry.platforms import default_platform, parse_platform

    return parse_platform(text) if text else default_platform()


class ImageSources:
    """Shared by the converter (metadata) and the worker (layers)."""

    def __init__(self, content: ContentStore, images: ImageStore, layer_cache: LayerCache,
                 registry: Callable[[], RegistryClient | None]) -> None:
        self.content = content
        self.images = images
        self.layer_cache = layer_cache
        self._registry = registry  # created on first use: most cached builds never need it
        self._lock = threading.Lock()
        self._resolved: dict[tuple[str, str], ImageInfo] = {}
        self._unpack_locks: dict[str, threading.Lock] = {}

    @property
    def registry(self) -> RegistryClient | None:
        return self._registry()

    # metadata -------------------------------------------------------------------

    def _json(self, digest: str) -> dict[str, Any]:
        doc = json.loads(self.content.read(digest))
        if not isinstance(doc, dict):
            raise BuildError(f"blob {digest} is not a JSON object")
        return doc

    def _local(self, ref: Reference, plat: Platform) -> ImageInfo | None:
        rec = None
        if ref.digest and self.content.has(ref.digest):
            digest, media = ref.digest, ""
        else:
            for name in (str(ref), ref.familiar, f"{ref.name}:{ref.tag or 'latest'}"):
                rec = self.images.get(name)
                if rec is not None:
                    break
            if rec is None:
                return None
            digest, media = rec.digest, rec.media_type
        doc = self._json(digest)
        media = doc.get("mediaType", media)
        if media in mt.INDEX_TYPES or "manifests" in doc:
            entries = doc.get("manifests", [])
            idx = choose(plat, [Platform.from_json(e["platform"]) if "platform" in e else None
                                for e in entries])
            if idx is None:
                raise BuildError(f"image {ref.familiar} has no variant for platform {plat}",
                                 hint="build or import it for that platform")
            digest = entries[idx]["digest"]
            doc = self._json(digest)
        config = self._json(doc["config"]["digest"])
        return ImageInfo(Reference(ref.domain, ref.path, ref.tag, digest), doc, config, False)

    def _remote(self, ref: Reference, plat: Platform) -> ImageInfo:
        if self.registry is None:
            raise BuildError(f"image {ref.familiar} is not in the local image store and no "
                             "registry access is configured",
                             hint="import it with `bkpy image import` or build it with --load")
        desc, body = self.registry.resolve(ref, str(plat))
        manifest = json.loads(body)
        if desc.media_type in mt.SCHEMA1_TYPES:
            raise BuildError(f"{ref.familiar}: Docker schema 1 images are not supported")
        self.content.write(body, desc.digest)
        cdesc = manifest["config"]
        if self.content.has(cdesc["digest"]):
            config_bytes = self.content.read(cdesc["digest"])
        else:
            config_bytes = self.registry.fetch_blob(ref, _Desc(cdesc))
            self.content.write(config_bytes, cdesc["digest"])
        return ImageInfo(Reference(ref.domain, ref.path, ref.tag, desc.digest), manifest,
                         json.loads(config_bytes), True)

    def info(self, ref_text: str, platform: str | None, *, pull: bool = False) -> ImageInfo:
        """The image for ``platform``; ``pull`` asks the registry even if stored locally.

        Digest-pinned lookups are remembered for the process: they cannot change.
        """
        ref = parse_reference(ref_text)
        plat = _platform(platform)
        key = (str(ref), str(plat))
        if ref.digest:
            with self._lock:
                hit = self._resolved.get(key)
            if hit is not None:
                return hit
        found = None if (pull and not ref.digest) else self._local(ref, plat)
        if found is None:
            try:
                found = self._remote(ref, plat)
            except UserError:
                if pull:
                    found = self._local(ref, plat)
                if found is None:
                    raise
        if ref.digest:
            with self._lock:
                self._resolved[key] = found
        return found


    # layers -----------------------------------------------------------------------------

    def unpack(self, worker: BuilderWorker, info: ImageInfo, ctx: OpContext) -> SnapshotResult:
        diff_ids = info.config.get("rootfs", {}).get("diff_ids", [])
        layers = info.manifest.get("layers", [])
        if len(diff_ids) != len(layers):
            raise BuildError(f"image {info.ref.familiar}: {len(layers)} layers but "
                             f"{len(diff_ids)} diff_ids in its config")
        sn = worker.sn
        self._fetch_missing(info, diff_ids, layers, sn, ctx)
        parent: str | None = None
        size = 0
        for layer, chain in zip(layers, chain_ids(diff_ids), strict=True):
            name = "img-" + chain.split(":", 1)[1]
            with self._lock:
                lock = self._unpack_locks.setdefault(name, threading.Lock())
            with lock:
                try:
                    sn.stat(name)
                except UserError:
                    self._unpack_one(worker, info, layer, name, parent, ctx)
            parent = name
            size = sn.usage(name).size
        return SnapshotResult(parent, size)

    def _fetch_missing(self, info: ImageInfo, diff_ids: list[str], layers: list[Any],
                       sn: Any, ctx: OpContext) -> None:
        """Pull the layer blobs that are neither unpacked nor in the content store."""
        missing = False
        for layer, chain in zip(layers, chain_ids(diff_ids), strict=True):
            if self.content.has(layer["digest"]):
                continue
            try:
                sn.stat("img-" + chain.split(":", 1)[1])
            except UserError:
                missing = True
                break
        if not missing:
            return
        if self.registry is None or not info.from_registry:
            raise BuildError(f"layers of {info.ref.familiar} are missing from the content "
                             "store", hint="re-import or re-pull the image")
        progress = ctx.progress

        def report(p: Any) -> None:
            progress.status(p.digest, current=p.done, total=p.total,
                            completed=p.status in ("done", "exists"))

        self.registry.pull(info.ref, self.content, progress=report)

    def _unpack_one(self, worker: BuilderWorker, info: ImageInfo, layer: dict[str, Any],
                    name: str, parent: str | None, ctx: OpContext) -> None:
        digest = layer["digest"]
        key = f"unpack-{name}"
        sn = worker.sn
        sn.prepare(key, parent)
        try:
            with self.content.open(digest) as f:
                applied = sn.apply_layer(key, f)
            sn.commit(name, key)
        except BaseException:
            sn.remove(key)
            raise
        comp = _COMPRESSIONS.get(layer.get("mediaType", ""), applied.compression.value)
        self.layer_cache.put_source(name, digest, layer.get("size", applied.size),
                                    applied.diff_id, comp)


class BuildResolver:
    """The converter's ImageResolver for one build: tags resolve once per build."""

    def __init__(self, sources: ImageSources, *, pull: bool = False,
                 report: Callable[[str], AbstractContextManager[None]] | None = None) -> None:
        self.sources = sources
        self.pull = pull
        self.report = report  # shows "[internal] load metadata for REF" as a step
        self._memo: dict[tuple[str, str], ImageInfo] = {}
        self._lock = threading.Lock()

    def resolve(self, ref: str, platform: Any) -> Any:
        from buildkit_py.frontend.dockerfile.convert import ResolvedImage

        plat = str(platform) if platform is not None else None
        key = (ref, plat or "")
        with self._lock:
            info = self._memo.get(key)
        if info is None:
            label = f"[internal] load metadata for {parse_reference(ref)}"
            with self.report(label) if self.report else nullcontext():
                info = self.sources.info(ref, plat, pull=self.pull)
            with self._lock:
                self._memo[key] = info
        return ResolvedImage(str(info.ref), info.config)


@dataclass(frozen=True)
class _Desc:
    """A descriptor view of a manifest's JSON entry for the registry client."""

    raw: dict[str, Any]

    @property
    def media_type(self) -> str:
        return str(self.raw.get("mediaType", ""))

    @property
    def digest(self) -> str:
        return str(self.raw["digest"])

    @property
    def size(self) -> int:
        return int(self.raw.get("size", -1))


class ImageSourceHandler:
    """``docker-image://REF@DIGEST`` vertex: keyed by the image's ChainID."""

    def __init__(self, worker: BuilderWorker, op: ops_pb2.Op, sources: ImageSources) -> None:
        self.worker = worker
        self.op = op
        self.sources = sources
        ident = op.source.identifier
        self.ref = ident.split("://", 1)[1]
        p = op.platform
        self.platform = "/".join(x for x in (p.os or "linux", p.architecture, p.variant) if x) \
            if p.architecture else None
        self._info: ImageInfo | None = None

    def _get(self) -> ImageInfo:
        if self._info is None:
            self._info = self.sources.info(self.ref, self.platform)
        return self._info

    def cache_map(self, ctx: OpContext) -> CacheMap:
        info = self._get()
        diff_ids = info.config.get("rootfs", {}).get("diff_ids", [])
        chain = chain_ids(diff_ids)[-1] if diff_ids else "empty"
        h = hashlib.sha256(f"bkpy-image-v1\0{chain}\0{self.platform}".encode())
        return CacheMap("sha256:" + h.hexdigest())

    def exec(self, ctx: OpContext, inputs: Sequence[Result]) -> list[Result]:
        return [self.sources.unpack(self.worker, self._get(), ctx)]

    def cancel(self) -> None:
        pass
