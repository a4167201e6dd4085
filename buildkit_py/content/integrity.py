"""Finding and dropping corrupted blobs (``bkpy du --verify``, ``bkpy prune --corrupt``).

A blob is corrupted when its bytes no longer hash to the digest it is stored under.
Dropping it alone would leave manifests and indexes naming a blob that is gone, and
image-store names pointing at incomplete images; so what (transitively) refers to a
corrupted blob is dropped with it. Nothing else refers to blobs in a way that breaks:
layer exports are found again only when their blob exists (else re-made from the
snapshot) and pulled layers whose blob is gone are pulled again, so the next build
re-creates or re-pulls everything that was dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from buildkit_py.content.errors import ContentError
from buildkit_py.content.images import ImageStore
from buildkit_py.content.store import ContentStore
from buildkit_py.content.verify import hash_file

#: Manifests and indexes are small; larger blobs are layers and are not parsed.
_MAX_DOCUMENT = 4 << 20


@dataclass(frozen=True)
class CorruptBlob:
    digest: str
    size: int
    actual: str  # what the stored bytes hash to


@dataclass
class DropResult:
    corrupt: list[CorruptBlob] = field(default_factory=list)
    #: manifests and indexes dropped because they named a dropped blob: (digest, size)
    dependents: list[tuple[str, int]] = field(default_factory=list)
    #: image-store names removed because their image lost a blob
    images: list[str] = field(default_factory=list)


def find_corrupt(store: ContentStore) -> list[CorruptBlob]:
    """Every stored blob whose content does not match its digest (reads each once)."""
    out: list[CorruptBlob] = []
    for info in store.walk():
        try:
            with store.open(info.digest) as f:
                actual = hash_file(f)
        except ContentError:
            continue  # removed meanwhile
        except OSError as err:
            out.append(CorruptBlob(info.digest, info.size, f"unreadable ({err.strerror})"))
            continue
        if actual != info.digest:
            out.append(CorruptBlob(info.digest, info.size, actual))
    return out


def _children(store: ContentStore, digest: str) -> set[str]:
    """The blobs a manifest or index names (empty for anything else)."""
    try:
        with store.open(digest) as f:
            data = f.read(_MAX_DOCUMENT + 1)
    except (ContentError, OSError):
        return set()
    if len(data) > _MAX_DOCUMENT or data[:1] != b"{":
        return set()
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return set()
    if not isinstance(doc, dict):
        return set()
    named = [doc.get("config"), doc.get("subject"), *(doc.get("layers") or []),
             *(doc.get("manifests") or [])]
    return {str(d["digest"]) for d in named if isinstance(d, dict) and "digest" in d}


def drop_corrupt(store: ContentStore, images: ImageStore,
                 corrupt: list[CorruptBlob] | None = None) -> DropResult:
    """Delete corrupted blobs, the manifests/indexes naming them, and image names of
    the images that lost one. Run with no build active (it deletes content)."""
    found = find_corrupt(store) if corrupt is None else corrupt
    result = DropResult(corrupt=found)
    if not found:
        return result
    doomed = {c.digest for c in found}
    sizes = {i.digest: i.size for i in store.walk()}
    parents: dict[str, set[str]] = {}
    for digest, size in sizes.items():
        if digest in doomed or size > _MAX_DOCUMENT:
            continue
        for child in _children(store, digest):
            parents.setdefault(child, set()).add(digest)
    todo = list(doomed)
    while todo:
        for parent in parents.get(todo.pop(), ()):
            if parent not in doomed:
                doomed.add(parent)
                todo.append(parent)
                result.dependents.append((parent, sizes.get(parent, 0)))
    for rec in images.all():
        if rec.digest in doomed:
            images.remove(rec.name)
            result.images.append(rec.name)
    for digest in doomed:
        store.delete(digest)
    return result
