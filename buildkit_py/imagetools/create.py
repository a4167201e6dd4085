"""``imagetools create``: combine images and indexes into one index and push it.

* Every manifest of an index source is taken over with its descriptor unchanged
  (platform, annotations); a single-manifest source gets its platform from its config.
  Manifests are deduplicated by digest, first source first.
* The new index is a Docker manifest list when every entry has a Docker media type, else an
  OCI index. Its bytes are JSON indented by two spaces: ``--dry-run`` prints exactly the
  bytes that would be pushed, so their sha256 is the index digest.
* A single source is re-tagged as is (same bytes, same digest), as buildx does.
* Pushing copies manifests by digest and never re-uploads what the target has: blobs from
  the same registry are cross-repo mounted; blobs from another registry are pulled into
  the local content store first (skipped when already there), under a lease.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from buildkit_py.content.digest import digest_bytes
from buildkit_py.errors import UsageError, UserError
from buildkit_py.imagetools.inspect import MAX_DEPTH
from buildkit_py.imagetools.sources import Blob, Fetched, ManifestSource, parse_document
from buildkit_py.registry import mediatypes as mt
from buildkit_py.registry.reference import Reference, parse_reference

if TYPE_CHECKING:
    from buildkit_py.content.store import ContentStore
    from buildkit_py.registry.client import RegistryClient

DOCKER_TYPES = frozenset({mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST})


@dataclass
class Combined:
    """The index to push (or the single source to re-tag) and everything under it."""

    media_type: str
    digest: str
    body: bytes
    reused: bool  # a single source pushed unchanged
    # every manifest and nested index reachable from the root, with where it came from
    manifests: dict[str, tuple[Fetched, Reference]] = field(default_factory=dict)

    @property
    def root(self) -> Blob:
        return Blob(self.media_type, self.digest, len(self.body))


def parse_targets(tags: Sequence[str]) -> list[Reference]:
    out = []
    for tag in tags:
        ref = parse_reference(tag)
        if ref.digest:
            raise UsageError(f"-t {tag}: a target cannot carry a digest",
                             hint="give a tag, e.g. -t registry:5000/app:1")
        out.append(ref)
    return out


def parse_sources(sources: Sequence[str], targets: Sequence[Reference]) -> list[Reference]:
    """Source references; a bare ``sha256:...`` names a digest in the first target's
    repository (as buildx allows)."""
    out = []
    for src in sources:
        if src.startswith("sha256:"):
            if not targets:
                raise UsageError(f"source {src} is a bare digest: give -t so it names a "
                                 "repository, or write REPO@sha256:...")
            out.append(Reference(targets[0].domain, targets[0].path).with_digest(src))
        else:
            out.append(parse_reference(src))
    return out


def _config_platform(config: dict[str, Any]) -> dict[str, Any]:
    """An index entry's platform object, from an image config (Go field order)."""
    if not config.get("os") or not config.get("architecture"):
        raise UserError("the image config names no os/architecture, so its platform is "
                        "unknown")
    out: dict[str, Any] = {"architecture": config["architecture"], "os": config["os"]}
    for key in ("os.version", "os.features", "variant"):
        if config.get(key):
            out[key] = config[key]
    return out


def _children(fetched: Fetched, ref: Reference) -> list[dict[str, Any]]:
    manifests = fetched.document().get("manifests")
    if not isinstance(manifests, list) or not all(isinstance(m, dict) for m in manifests):
        raise UserError(f"index {fetched.digest} of {ref} has no valid manifests list")
    return manifests


def _parallel(fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(4, len(items))) as pool:
        return list(pool.map(fn, items))


def _gather(src: ManifestSource, fetched: Fetched, out: dict[str, tuple[Fetched, Reference]],
            depth: int = 0) -> None:
    """Record ``fetched`` and, for an index, every manifest under it."""
    if depth > MAX_DEPTH:
        raise UserError(f"{src.ref}: indexes nested too deeply")
    out.setdefault(fetched.digest, (fetched, src.ref))
    if not fetched.is_index:
        return
    todo = [str(c["digest"]) for c in _children(fetched, src.ref) if c["digest"] not in out]
    for child in _parallel(src.manifest, list(dict.fromkeys(todo))):
        _gather(src, child, out, depth + 1)


def combine(sources: Sequence[ManifestSource]) -> Combined:
    """Read every source and build the index that joins them."""
    if not sources:
        raise UsageError("imagetools create needs at least one source image")
    roots: list[Fetched] = _parallel(lambda s: s.root(), list(sources))
    if len(roots) == 1:
        combined = Combined(roots[0].media_type, roots[0].digest, roots[0].body, True)
        _gather(sources[0], roots[0], combined.manifests)
        return combined
    entries: dict[str, dict[str, Any]] = {}
    manifests: dict[str, tuple[Fetched, Reference]] = {}
    for src, root in zip(sources, roots, strict=True):
        if root.is_index:
            for child in _children(root, src.ref):
                entries.setdefault(str(child["digest"]), child)
            _gather(src, root, manifests)
            manifests.pop(root.digest)  # the source index itself is not part of the result
            continue
        if not mt.is_manifest(root.media_type):
            raise UserError(f"{src.ref}: cannot combine content of type {root.media_type!r}")
        cfg = root.document().get("config")
        if not isinstance(cfg, dict):
            raise UserError(f"{src.ref}: manifest without config")
        config = parse_document(src.blob(Blob.from_json(cfg)), f"config of {src.ref}")
        try:
            platform = _config_platform(config)
        except UserError as err:
            raise UserError(f"{src.ref}: {err.message}") from None
        entries.setdefault(root.digest, {"mediaType": root.media_type, "digest": root.digest,
                                         "size": root.size, "platform": platform})
        manifests.setdefault(root.digest, (root, src.ref))
    docker = all(str(e.get("mediaType", "")) in DOCKER_TYPES for e in entries.values())
    media_type = mt.DOCKER_MANIFEST_LIST if docker else mt.OCI_INDEX
    body = json.dumps({"schemaVersion": 2, "mediaType": media_type,
                       "manifests": list(entries.values())}, indent=2).encode()
    combined = Combined(media_type, digest_bytes(body), body, False)
    combined.manifests = manifests
    return combined


def _blobs_of(fetched: Fetched) -> list[Blob]:
    doc = fetched.document()
    cfg = doc.get("config")
    layers = doc.get("layers") or []
    out = [Blob.from_json(cfg)] if isinstance(cfg, dict) else []
    out += [Blob.from_json(x) for x in layers if isinstance(x, dict)]
    return out


def push(combined: Combined, targets: Sequence[Reference], client: RegistryClient,
         store: ContentStore, report: Callable[[str], None] = lambda _: None) -> None:
    """Push ``combined`` to every target (manifests by digest, then the root by tag)."""
    with store.lease(expires_in=3600.0) as lease:
        for fetched, _ in combined.manifests.values():
            store.write(fetched.body, fetched.digest, lease=lease)
        store.write(combined.body, combined.digest, lease=lease)
        for target in targets:
            mounts: dict[str, str] = {}
            for fetched, origin in combined.manifests.values():
                if fetched.is_index:
                    continue
                blobs = _blobs_of(fetched)
                if origin.domain == target.domain:
                    if origin.path != target.path:
                        mounts.update({b.digest: origin.name for b in blobs})
                elif not all(store.has(b.digest) for b in blobs):
                    report(f"copying {origin.name}@{fetched.digest} from {origin.domain}")
                    client.pull(origin.with_digest(fetched.digest), store, lease=lease)
            report(f"pushing {target}")
            client.push(target, store, combined.root, mount_from=mounts)
