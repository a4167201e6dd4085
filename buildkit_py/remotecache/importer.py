"""Cache import (``--cache-from``): read a cache's config once, before the solve, and
serve it to the solver as a lazy :class:`~buildkit_py.solver.imports.CacheSource`.

Where from: a registry ref (a cache manifest, a legacy cache index, or an image whose
config carries inline cache), or a local OCI layout (``src=``, ``tag=``/``digest=``).
Nothing but manifests and the config is read up front; a hit materializes only the
layers of that result's chain that are neither unpacked (``img-<chainid>``) nor in the
content store, and unpacks them with the image source's unpacker.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buildkit_py.api.wire import lent_cache_name
from buildkit_py.errors import UserError
from buildkit_py.executor.cache_mounts import CacheMountManager
from buildkit_py.registry import mediatypes as mt
from buildkit_py.registry.descriptor import Descriptor
from buildkit_py.registry.reference import parse_reference
from buildkit_py.remotecache.config import (
    ANN_CREATED,
    ANN_UNCOMPRESSED,
    INLINE_KEY,
    CacheConfig,
    CacheFormatError,
    CacheLayer,
    config_of,
    parse_inline,
)
from buildkit_py.remotecache.mounts import fill_mounts
from buildkit_py.remotecache.spec import CacheImport
from buildkit_py.snapshot import DBSnapshotter
from buildkit_py.solver.worker import Result
from buildkit_py.source.image import ImageSources
from buildkit_py.worker.results import SnapshotResult
from buildkit_py.worker.session import LentFiles, LocalFiles

if TYPE_CHECKING:
    from buildkit_py.registry.client import RegistryClient

FOREIGN = "was written by another builder; its keys cannot match bkpy's (no cache used)"
Fetch = Callable[[list[dict[str, Any]]], None]


@dataclass
class Loaded:
    """A cache config with the descriptors of its layer blobs and how to fetch them."""

    config: CacheConfig
    descs: dict[str, dict[str, Any]]  # blob digest -> descriptor JSON
    fetch: Fetch


class ImportedCache:
    """One ``--cache-from`` source for one build (implements ``CacheSource``)."""

    def __init__(self, where: str, loaded: Loaded, sources: ImageSources,
                 sn: DBSnapshotter) -> None:
        self.where = where
        self.sources = sources
        self.sn = sn
        self._fetch = loaded.fetch
        cfg = loaded.config
        self._cfg = cfg
        self._descs = loaded.descs
        self._results: dict[str, int | None] = {}
        empty = set(cfg.empty)
        for r in cfg.records:
            if r.has_result and r.layer is not None and self._usable(r.layer):
                self._results.setdefault(r.digest, r.layer)
            elif r.digest in empty:
                self._results.setdefault(r.digest, None)
        self._checksums = {(c.key, tuple(c.selectors)): c.digest for c in cfg.checksums}
        self._lock = threading.Lock()
        self.fetched: list[str] = []  # blob digests downloaded (for tests and reports)

    def _usable(self, layer: int) -> bool:
        try:
            return all(self._diff_id(i) for i in self._cfg.chain(layer))
        except (CacheFormatError, IndexError):
            return False

    def _diff_id(self, i: int) -> str:
        layer = self._cfg.layers[i]
        desc = self._descs.get(layer.blob) or {}
        return layer.diff_id or str((desc.get("annotations") or {}).get(ANN_UNCOMPRESSED, ""))

    def __len__(self) -> int:
        return len(self._results)

    # CacheSource -----------------------------------------------------------------

    def existing(self, keys: Sequence[str]) -> set[str]:
        return {k for k in keys if k in self._results}

    def checksum(self, key: str, selectors: Sequence[str]) -> str | None:
        return self._checksums.get((key, tuple(selectors)))

    def load(self, key: str) -> Result | None:
        if key not in self._results:
            return None
        top = self._results[key]
        if top is None:
            return SnapshotResult(None)
        chain = self._cfg.chain(top)
        layers = [self._layer_desc(i) for i in chain]
        diff_ids = [self._diff_id(i) for i in chain]
        created = [_seconds(self._cfg.layers[i].created_at
                            or (self._layer_desc(i).get("annotations") or {}).get(ANN_CREATED))
                   for i in chain]
        with self._lock:  # one download of a chain at a time per source
            missing = self.sources.missing_layers(self.sn, layers, diff_ids)
            if missing:
                self._fetch(missing)
                self.fetched.extend(d["digest"] for d in missing)
        return self.sources.unpack_chain(self.sn, layers, diff_ids, created)

    def fill_cache_mounts(self, ids: Sequence[str], mounts: CacheMountManager,
                          step: Callable[[str], Any]) -> list[str]:
        """Fill this build's cache mounts (``ids``) that the cache carries and this
        builder lacks (``remotecache.mounts``); returns the ids filled."""
        return fill_mounts(self._cfg, self._descs, ids, mounts, self.sources.content,
                           self._fetch, step)

    def _layer_desc(self, i: int) -> dict[str, Any]:
        layer = self._cfg.layers[i]
        desc = dict(self._descs.get(layer.blob) or {})
        desc.setdefault("digest", layer.blob)
        desc.setdefault("mediaType", layer.media_type or mt.OCI_LAYER_GZIP)
        desc.setdefault("size", layer.size or -1)
        return desc


def _seconds(stamp: Any) -> float | None:
    if not stamp:
        return None
    try:
        text = str(stamp).replace("Z", "+00:00")
        if "." in text:  # Go writes up to 9 fractional digits; Python reads 6
            head, _, rest = text.partition(".")
            digits = "".join(c for c in rest if c.isdigit())
            text = f"{head}.{digits[:6]}{rest[len(digits):]}"
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


# reading a cache --------------------------------------------------------------------


def _inline_of(manifest: dict[str, Any], config: dict[str, Any]) -> CacheConfig | None:
    value = config.get(INLINE_KEY)
    if value is None:
        return None
    layers = manifest.get("layers") or []
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(layers):
        raise CacheFormatError("the image's layers and diff_ids differ in number")
    image_layers = [CacheLayer(str(d["digest"]), i - 1, str(d.get("mediaType", "")),
                               str(diff_ids[i]), int(d.get("size", 0)))
                    for i, d in enumerate(layers)]
    return parse_inline(value, image_layers)


def load_registry(registry: RegistryClient, ref_text: str, platforms: Sequence[str],
                  store: Any) -> list[Loaded]:
    """A registry cache: a cache manifest or index, else the inline cache of the image's
    platforms (one config per platform)."""
    ref = parse_reference(ref_text)
    desc, body = registry.resolve(ref)
    doc = json.loads(body)

    def read(d: dict[str, Any]) -> bytes:
        return registry.fetch_blob(ref, Descriptor.from_json(d))

    def fetch(layers: list[dict[str, Any]]) -> None:
        registry.fetch_blobs(ref, [Descriptor.from_json(d) for d in layers], store)

    found = config_of(doc, read)
    if found is not None:
        return [Loaded(found[0], found[1], fetch)]
    out: list[Loaded] = []
    manifests: list[tuple[bytes, dict[str, Any]]] = []
    if mt.is_index(desc.media_type) or "manifests" in doc:
        for plat in dict.fromkeys(platforms):
            _, mbody = registry.resolve(ref, plat)
            manifests.append((mbody, json.loads(mbody)))
    else:
        manifests.append((body, doc))
    for _, manifest in manifests:
        cdesc = manifest.get("config")
        if not isinstance(cdesc, dict):
            continue
        config = json.loads(read(cdesc))
        cfg = _inline_of(manifest, config) if isinstance(config, dict) else None
        if cfg is not None:
            out.append(Loaded(cfg, {str(d["digest"]): d for d in manifest.get("layers") or []},
                              fetch))
    if not out:
        raise UserError(f"{ref_text} is neither a cache nor an image with inline cache")
    return out


def load_local(files: LentFiles, where: str, tag: str | None, digest: str | None,
               sources: ImageSources) -> Loaded | None:
    """A local cache (an OCI layout, read through ``files``: on this machine, or the
    client's when built by a daemon); None when the directory or the tag is missing."""
    if digest is None:
        index_path = files.file("index.json")
        if index_path is None:
            return None
        index = json.loads(index_path.read_bytes())
        want = tag or "latest"
        found = [m for m in index.get("manifests") or []
                 if (m.get("annotations") or {}).get("org.opencontainers.image.ref.name")
                 == want]
        if not found:
            return None
        digest = str(found[-1]["digest"])

    def read(d: dict[str, Any]) -> bytes:
        return _layout_read(files, where, str(d["digest"]))

    def fetch(layers: list[dict[str, Any]]) -> None:
        for d in layers:
            blob = str(d["digest"])
            if sources.content.has(blob):
                continue
            if files.file(_blob_rel(where, blob)) is None:
                raise UserError(f"{where}: blob {blob} is missing from the layout")
            sources.import_layout_blob(files.root, blob, int(d.get("size", -1)))

    doc = json.loads(_layout_read(files, where, digest))
    found_cfg = config_of(doc, read)
    if found_cfg is None:
        raise UserError(f"{where}: {digest} is not a cache manifest")
    return Loaded(found_cfg[0], found_cfg[1], fetch)


def _blob_rel(where: str, digest: str) -> str:
    alg, _, hexpart = digest.partition(":")
    if not alg.isalnum() or not hexpart or not all(c in "0123456789abcdef" for c in hexpart):
        raise UserError(f"{where}: invalid digest {digest!r}")
    return f"blobs/{alg}/{hexpart}"


def _layout_read(files: LentFiles, where: str, digest: str) -> bytes:
    path = files.file(_blob_rel(where, digest))
    if path is None:
        raise UserError(f"{where}: blob {digest} is missing from the layout")
    return path.read_bytes()


def open_imports(specs: Sequence[CacheImport], *, registry: Callable[[], RegistryClient],
                 sources: ImageSources, sn: DBSnapshotter, platforms: Sequence[str],
                 step: Callable[[str], Any], warn: Callable[[str], None],
                 lent: Callable[[str, str], LentFiles] = lambda _name, path: LocalFiles(
                     Path(path)),
                 ) -> list[ImportedCache]:
    """The imports of a build, each read once; a cache that cannot be read, is missing
    or was written by another builder is a warning (the build goes on without it).
    ``lent(name, src)``: a ``type=local`` directory (the client lends the ``i``-th as
    ``lent_cache_name("from", i)``)."""
    out: list[ImportedCache] = []
    for i, spec in enumerate(specs):
        where = spec.where
        label = f"importing cache manifest from {where}"
        loaded: list[Loaded] = []
        with step(label):  # a failure is a warning: the step itself completes
            try:
                if spec.type == "registry":
                    loaded = load_registry(registry(), where, platforms, sources.content)
                else:
                    files = lent(lent_cache_name("from", i), where)
                    one = load_local(files, where, spec.attrs.get("tag"),
                                     spec.attrs.get("digest"), sources)
                    if one is None:
                        what = "tag " + repr(spec.attrs.get("tag") or "latest") \
                            if files.file("index.json") is not None else "directory"
                        warn(f"local cache import at {where} not found: no such {what}")
                    else:
                        loaded = [one]
            except (UserError, OSError, ValueError, KeyError, TypeError) as err:
                text = err.message if isinstance(err, UserError) else str(err)
                if isinstance(err, UserError) and err.hint:
                    text += f" ({err.hint})"  # say, to log in
                warn(f"failed to import cache from {where}: {text}")
                continue
        for one in loaded:
            if not one.config.ours:
                warn(f"the cache at {where} {FOREIGN}")
                continue
            out.append(ImportedCache(where, one, sources, sn))
    return out
