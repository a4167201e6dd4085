"""Images as sources: resolve a reference to a pinned manifest and config, then unpack
its layers into snapshots (one committed snapshot per layer, named by ChainID, so images
sharing layers share snapshots).

Resolution looks in the local image store first (images built with ``--load`` or
imported), then asks the registry; ``--pull`` skips the local store. Layers are only
fetched when a step actually needs the image's filesystem: a fully cached build pulls
nothing.

``--build-context NAME=oci-layout://PATH[:TAG][@DIGEST]``: the layout's manifests, configs
and the chosen platform's layers are copied (verified) into the content store, and the image
is then resolved from there by digest under the reserved name ``oci-layout.invalid/NAME``,
which never reaches a registry.

A layer pulled for a build is unpacked while it downloads: the download hands its bytes
to the unpacker through a :class:`~buildkit_py.registry.blob_feed.BlobFeed` as it writes
them to the store, layers download in parallel, and each unpacks as soon as the one below
it is committed. An unpacker that cannot follow its download reads the stored blob.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from buildkit_py.content.errors import ContentError
from buildkit_py.content.images import ImageStore
from buildkit_py.content.store import ContentStore
from buildkit_py.errors import BuildError, UsageError, UserError
from buildkit_py.exporter.layers import CREATED_LABEL, LayerCache
from buildkit_py.gostrings import go_quote
from buildkit_py.platforms import Platform, as_platform, best_match, host_platform
from buildkit_py.registry import mediatypes as mt
from buildkit_py.registry.blob_feed import BlobFeed, FeedLost
from buildkit_py.registry.errors import NotFoundError
from buildkit_py.registry.reference import Reference, parse_reference
from buildkit_py.snapshot import DBSnapshotter
from buildkit_py.solver.cancel import Cancelled
from buildkit_py.solver.progress import ProgressWriter
from buildkit_py.solver.worker import CacheMap, OpContext, Result
from buildkit_py.worker.ops.explain import describe_image_change, image_summary
from buildkit_py.worker.results import SnapshotResult

if TYPE_CHECKING:
    from buildkit_py.llb import ops_pb2
    from buildkit_py.registry.client import RegistryClient
    from buildkit_py.worker.ops.base import OpWorker

IMAGE_SCHEMES = ("docker-image", "oci-layout")  # LLB source schemes this module serves
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


def snapshot_names(diff_ids: Sequence[str]) -> list[str]:
    """The snapshot name of each layer of a chain: ``img-`` and its ChainID's hex."""
    return ["img-" + c.split(":", 1)[1] for c in chain_ids(diff_ids)]


def _platform(text: str | None) -> Platform:
    return as_platform(text or None)


# Images of oci-layout contexts live under this name; ".invalid" never resolves (RFC 2606).
OCI_LAYOUT_DOMAIN = "oci-layout.invalid"
_REF_NAME = "org.opencontainers.image.ref.name"
_CONTAINERD_NAME = "io.containerd.image.name"


def _layout_tag_matches(annotations: dict[str, Any], tag: str) -> bool:
    ref_name = str(annotations.get(_REF_NAME, ""))
    full = str(annotations.get(_CONTAINERD_NAME, ""))
    return ref_name == tag or ref_name.endswith(":" + tag) or (
        full.endswith(":" + tag) and full.rfind(":") > full.rfind("/"))


def oci_layout_root(path: Path, tag: str | None, digest: str | None) -> str:
    """The digest ``oci-layout://PATH[:TAG][@DIGEST]`` names: DIGEST if given, else the
    index.json entry tagged TAG (default ``latest``), else the only entry when there is
    exactly one and no tag was asked for."""
    where = f"oci-layout://{path}"
    try:
        index = json.loads((path / "index.json").read_bytes())
    except FileNotFoundError:
        raise UsageError(f"{where}: not an OCI image layout (no index.json)",
                        hint="point at a folder written by -o type=oci,tar=false, skopeo or "
                             "umoci") from None
    except (OSError, ValueError) as err:
        raise UsageError(f"{where}: cannot read index.json: {err}") from None
    entries = [e for e in index.get("manifests") or [] if isinstance(e, dict)] \
        if isinstance(index, dict) else []
    if digest is not None:
        if not _layout_blob(path, digest).is_file():
            raise UsageError(f"{where}: no blob {digest} in the layout")
        return digest
    want = tag or "latest"
    found = [e for e in entries if _layout_tag_matches(e.get("annotations") or {}, want)]
    if not found and tag is None and len(entries) == 1:
        found = entries
    if not found:
        tags = sorted({str((e.get("annotations") or {}).get(_REF_NAME, "")) for e in entries}
                      - {""})
        raise UsageError(f"{where}: no image tagged {want!r} in index.json",
                        hint=f"tags in the layout: {', '.join(tags)}" if tags else
                        "add @sha256:DIGEST to pick an image by digest")
    return str(found[0]["digest"])


def _layout_blob(path: Path, digest: str) -> Path:
    alg, _, hexpart = digest.partition(":")
    if not re.fullmatch(r"[a-z0-9]+", alg) or not re.fullmatch(r"[a-f0-9]+", hexpart):
        raise UsageError(f"oci-layout://{path}: invalid digest {digest!r}")
    return path / "blobs" / alg / hexpart


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
            idx = best_match(plat, [Platform.from_json(e["platform"]) if "platform" in e else None
                                for e in entries])
            if idx is None:
                raise BuildError(f"image {ref.familiar} has no variant for platform {plat}",
                                 hint="build or import it for that platform")
            digest = entries[idx]["digest"]
            doc = self._json(digest)
        config = self._json(doc["config"]["digest"])
        # Found by digest (not by a local-store name): a manifest an earlier resolve pulled,
        # so missing layers may still come from its registry.
        pullable = rec is None and ref.domain != OCI_LAYOUT_DOMAIN
        return ImageInfo(Reference(ref.domain, ref.path, ref.tag, digest), doc, config,
                         pullable)

    def _remote(self, ref: Reference, plat: Platform) -> ImageInfo:
        if ref.domain == OCI_LAYOUT_DOMAIN:
            raise BuildError(f"image {ref.familiar} of an oci-layout context is no longer in "
                             "the content store", hint="run the build again")
        if self.registry is None:
            raise BuildError(f"image {ref.familiar} is not in the local image store and no "
                             "registry access is configured",
                             hint="import it with `bkpy image import` or build it with --load")
        # a HEAD, and the manifests this store already holds (one request per rebuild)
        desc, body = self.registry.resolve(ref, str(plat), store=self.content)
        manifest = json.loads(body)
        if desc.media_type in mt.SCHEMA1_TYPES:
            raise BuildError(f"{ref.familiar}: Docker schema 1 images are not supported")
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

    def oci_layout(self, path: Path, tag: str | None, digest: str | None, platform: str | None,
                   name: str) -> ImageInfo:
        """Import the image an oci-layout context names into the content store and resolve
        it for ``platform``: manifests and configs of every platform (small), layers only
        of the chosen one."""
        root = oci_layout_root(path, tag, digest)
        self._import_layout_tree(path, root, 0)
        repo = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "context"
        info = self._local(Reference(OCI_LAYOUT_DOMAIN, repo, None, root), _platform(platform))
        assert info is not None  # the root was just imported
        for layer in info.manifest.get("layers", []):
            self.import_layout_blob(path, str(layer["digest"]), int(layer.get("size", -1)))
        return info

    def _import_layout_tree(self, path: Path, digest: str, depth: int) -> None:
        if depth > 4:
            raise UserError(f"oci-layout://{path}: indexes nested too deeply")
        self.import_layout_blob(path, digest, -1)
        try:
            doc = self._json(digest)
            children = [str(e["digest"]) for e in doc.get("manifests") or []]
            cfg = doc.get("config")
            config = (str(cfg["digest"]), int(cfg.get("size", -1))) \
                if isinstance(cfg, dict) else None
        except (ValueError, UnicodeDecodeError, BuildError, KeyError, TypeError):
            raise UsageError(f"oci-layout://{path}: {digest} is not an image manifest or "
                             "index") from None
        for child in children:
            self._import_layout_tree(path, child, depth + 1)
        if config is not None:
            self.import_layout_blob(path, *config)

    def import_layout_blob(self, path: Path, digest: str, size: int) -> None:
        if self.content.has(digest):
            return
        src = _layout_blob(path, digest)
        try:
            with open(src, "rb") as f, \
                    self.content.writer(digest, size if size >= 0 else None) as w:
                while chunk := f.read(1 << 20):
                    w.write(chunk)
        except FileNotFoundError:
            raise UserError(f"oci-layout://{path}: blob {digest} is missing from the layout",
                            hint="the layout is incomplete; export it again") from None
        except ContentError as err:
            raise UserError(f"oci-layout://{path}: blob {digest} is corrupted ({err})",
                            hint="the layout was modified or damaged; export it again"
                            ) from None

    # layers -----------------------------------------------------------------------------

    def unpack(self, worker: OpWorker, info: ImageInfo, ctx: OpContext) -> SnapshotResult:
        diff_ids = (info.config.get("rootfs") or {}).get("diff_ids") or []
        layers = info.manifest.get("layers", [])
        if len(diff_ids) != len(layers):
            raise BuildError(f"image {info.ref.familiar}: {len(layers)} layers but "
                             f"{len(diff_ids)} diff_ids in its config")
        missing = self.missing_layers(worker.sn, layers, diff_ids)
        if not missing:
            return self.unpack_chain(worker.sn, layers, diff_ids, progress=ctx.progress)
        self._check_fetchable(info)
        feeds = {layer["digest"]: BlobFeed(partial(self.content.open, layer["digest"]))
                 for layer in missing}
        with ThreadPoolExecutor(1, thread_name_prefix="bkpy-pull") as pool:
            pulled = pool.submit(self._pull, info, ctx, feeds)
            try:
                top = self.unpack_chain(worker.sn, layers, diff_ids, progress=ctx.progress,
                                        feeds=feeds)
                pulled.result()
                return top
            except _NotDownloaded:
                pulled.result()  # raises what stopped the download
                raise
            finally:
                for feed in feeds.values():
                    feed.close()  # an unpack that failed leaves the download to the store

    def unpack_local(self, worker: OpWorker, ref_text: str) -> bool:
        """Unpack the host platform's variant of local image ``ref_text`` now, as
        ``docker load`` extracts layers at load time, so a first FROM finds them ready.
        False when the store has no such variant (a FROM then unpacks on demand)."""
        try:
            info = self._local(parse_reference(ref_text), host_platform())
        except BuildError:
            return False
        if info is None:
            return False
        diff_ids = (info.config.get("rootfs") or {}).get("diff_ids") or []
        layers = info.manifest.get("layers", [])
        if len(diff_ids) != len(layers) or not all(self.content.has(layer["digest"])
                                                   for layer in layers):
            return False
        self.unpack_chain(worker.sn, layers, diff_ids)
        return True

    def unpack_chain(self, sn: DBSnapshotter, layers: Sequence[dict[str, Any]],
                     diff_ids: Sequence[str],
                     created: Sequence[float | None] = (), *,
                     progress: ProgressWriter | None = None,
                     feeds: Mapping[str, BlobFeed] | None = None) -> SnapshotResult:
        """Unpack a chain of layer blobs (descriptors as JSON: digest, mediaType, size;
        bottom first) from the content store, each as the committed snapshot
        ``img-<chainid>`` unless it already is one; returns the top. ``created``: when
        each layer was first made (an imported cache's times), kept as a snapshot label
        so images made from it keep their history times.

        The one unpacker of image layers: image sources and imported caches. ``feeds``:
        the layers being downloaded now, by digest, read as they arrive."""
        parent: str | None = None
        size = 0
        for i, (layer, name, diff_id) in enumerate(
                zip(layers, snapshot_names(diff_ids), diff_ids, strict=True)):
            with self._lock:
                lock = self._unpack_locks.setdefault(name, threading.Lock())
            with lock:
                try:
                    sn.stat(name)
                except UserError:
                    when = created[i] if i < len(created) else None
                    # "extracting sha256:..." under the step, as BuildKit shows it
                    sid = f"extracting {layer['digest']}"
                    if progress is not None:
                        progress.status(sid, 0, name="extracting")
                    self._unpack_one(sn, layer, name, parent, diff_id, when,
                                     (feeds or {}).get(layer["digest"]))
                    if progress is not None:
                        progress.status(sid, 0, name="extracting", completed=True)
            parent = name
            size = sn.usage(name).size
        return SnapshotResult(parent, size)

    def missing_layers(self, sn: DBSnapshotter, layers: Sequence[dict[str, Any]],
                       diff_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The layers of a chain whose blob is neither in the content store nor unpacked
        (what has to be downloaded to unpack the chain)."""
        out = []
        for layer, name in zip(layers, snapshot_names(diff_ids), strict=True):
            if self.content.has(layer["digest"]):
                continue
            try:
                sn.stat(name)
            except UserError:
                out.append(layer)
        return out

    def _check_fetchable(self, info: ImageInfo) -> None:
        if self.registry is None or not info.from_registry:
            raise BuildError(f"layers of {info.ref.familiar} are missing from the content "
                             "store", hint="re-import or re-pull the image")

    def _pull(self, info: ImageInfo, ctx: OpContext, feeds: Mapping[str, BlobFeed]) -> None:
        """Pull the blobs the store lacks, handing the layers in ``feeds`` over as they
        come."""
        progress = ctx.progress

        def report(p: Any) -> None:
            progress.status(p.digest, current=p.done, total=p.total,
                            completed=p.status in ("done", "exists"))

        assert self.registry is not None
        try:
            self.registry.pull(info.ref, self.content, progress=report, feeds=feeds)
        finally:
            for feed in feeds.values():
                feed.failed()  # no-op for the ended ones: nobody waits on a dead pull

    def _unpack_one(self, sn: DBSnapshotter, layer: dict[str, Any], name: str,
                    parent: str | None, diff_id: str, created: float | None = None,
                    feed: BlobFeed | None = None) -> None:
        digest = layer["digest"]
        key = f"unpack-{name}"
        sn.prepare(key, parent)
        try:
            applied = None
            if feed is not None:
                try:
                    applied = sn.apply_layer(key, cast(BinaryIO, feed))
                except FeedLost:  # start again from the stored blob
                    sn.remove(key)
                    sn.prepare(key, parent)
                    if not feed.stored():
                        raise _NotDownloaded(digest) from None
            if applied is None:
                with self.content.open(digest) as f:
                    applied = sn.apply_layer(key, f)
            if applied.diff_id != diff_id:
                # As containerd: a layer must be what the config says it is, else the
                # snapshot (named by the chain of diff_ids) would lie about its content.
                raise BuildError(f"failed to extract layer {digest}: wrong diff id "
                                 f"calculated on extraction {go_quote(applied.diff_id)}",
                                 hint=f"the image config lists {diff_id} for this layer; "
                                      "the image is corrupt: rebuild or re-push it")
            sn.commit(name, key, {CREATED_LABEL: repr(created)} if created else None)
        except BaseException:
            sn.remove(key)
            raise
        comp = _COMPRESSIONS.get(layer.get("mediaType", ""), applied.compression.value)
        self.layer_cache.put_source(name, digest, layer.get("size", applied.size),
                                    applied.diff_id, comp)


class _NotDownloaded(BuildError):
    """A layer's download failed; the pull's own error says why (raised instead)."""

    def __init__(self, digest: str) -> None:
        super().__init__(f"layer {digest} could not be downloaded")


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
        # reason: the Dockerfile converter (~40 ms) is for builds, not du or image import
        from buildkit_py.frontend.dockerfile.convert import ResolvedImage

        plat = str(platform) if platform is not None else None
        key = (ref, plat or "")
        with self._lock:
            info = self._memo.get(key)
        if info is None:
            name = str(parse_reference(ref))
            label = f"[internal] load metadata for {name}"
            try:
                with self.report(label) if self.report else nullcontext():
                    info = self._info(ref, name, plat)
            except (UsageError, Cancelled):
                raise
            except UserError as err:
                # BuildKit's wording; the step's name is framed above the error, as buildx
                # frames a failed step's
                raise BuildError(f"failed to resolve source metadata for {name}: {err.text()}",
                                 step=label, hint=err.hint) from err
            with self._lock:
                self._memo[key] = info
        return ResolvedImage(str(info.ref), info.config)

    def _info(self, ref: str, name: str, plat: str | None) -> ImageInfo:
        try:
            return self.sources.info(ref, plat, pull=self.pull)
        except NotFoundError as err:  # containerd's resolver's wording (the step shows it)
            raise BuildError(f"{name}: not found", hint=err.hint) from err

    def resolve_oci_layout(self, path: str, tag: str | None, digest: str | None,
                           platform: Any, name: str) -> Any:
        """``--build-context NAME=oci-layout://PATH[:TAG][@DIGEST]`` for ``platform``."""
        # reason: the Dockerfile converter (~40 ms) is for builds, not du or image import
        from buildkit_py.frontend.dockerfile.convert import ResolvedImage

        plat = str(platform) if platform is not None else None
        where = Path(path).absolute()
        key = (f"oci-layout://{where}:{tag or ''}@{digest or ''}", plat or "")
        with self._lock:
            info = self._memo.get(key)
        if info is None:
            label = f"[context {name}] load metadata for oci-layout://{path}" + (
                f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
            with self.report(label) if self.report else nullcontext():
                info = self.sources.oci_layout(where, tag, digest, plat, name)
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

    def __init__(self, worker: OpWorker, op: ops_pb2.Op, sources: ImageSources) -> None:
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
        diff_ids = (info.config.get("rootfs") or {}).get("diff_ids") or []
        chain = chain_ids(diff_ids)[-1] if diff_ids else "empty"
        h = hashlib.sha256(f"bkpy-image-v1\0{chain}\0{self.platform}".encode())
        return CacheMap("sha256:" + h.hexdigest())

    def exec(self, ctx: OpContext, inputs: Sequence[Result]) -> list[Result]:
        return [self.sources.unpack(self.worker, self._get(), ctx)]

    # why it ran (solver.worker.ExplainsMisses)
    def _summary(self) -> dict[str, Any]:
        return image_summary(self.ref, self._get().ref.digest or "", self.platform)

    def change_summary(self, ctx: OpContext) -> str:
        return json.dumps(self._summary(), sort_keys=True)

    def describe_change(self, ctx: OpContext, old_summary: str) -> str | None:
        return describe_image_change(self._summary(), old_summary)

    def cancel(self) -> None:
        pass
