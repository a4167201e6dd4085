"""Which repositories of a registry are known to hold a blob, so a push mounts the blob
from one of them instead of uploading it.

A blob pulled from, or pushed to, repository A of registry R carries the content label
``containerd.io/distribution.source.R`` with A in its value (containerd's label: the
repositories comma-joined, the latest first, at most :data:`MAX_REPOSITORIES`). A push
to another repository B of R asks R to mount each such blob from A (``POST
.../blobs/uploads/?mount=DIGEST&from=A``): the registry links what it already has and no
bytes move. A registry that does not mount it (A is gone, the token may not read A, no
cross-repository mounts) opens an upload session instead, and the blob is uploaded as
any other. BuildKit labels and mounts the same way, so an image pushed to a second
repository, or one whose base image came from the same registry, uploads only the
blobs that registry lacks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from buildkit_py.content.store import ContentStore

LABEL_PREFIX = "containerd.io/distribution.source."
MAX_REPOSITORIES = 5


def label_key(domain: str) -> str:
    return LABEL_PREFIX + domain


def _repositories(value: str) -> list[str]:
    return [repo for repo in value.split(",") if repo]


def mount_sources(store: ContentStore, domain: str, target: str,
                  digests: Iterable[str]) -> dict[str, str]:
    """digest -> a repository of ``domain`` other than ``target`` known to hold it (the
    latest recorded), for the blobs of ``digests`` that have one."""
    out = {}
    for digest, value in store.label_values(label_key(domain), digests).items():
        other = next((repo for repo in _repositories(value) if repo != target), None)
        if other is not None:
            out[digest] = other
    return out


def record(store: ContentStore, domain: str, repository: str,
           digests: Iterable[str]) -> None:
    """Note that ``repository`` of ``domain`` holds these blobs (those in the store);
    blobs already noted with it as their latest are not written again."""
    key = label_key(domain)
    wanted = list(dict.fromkeys(digests))
    current: Mapping[str, str] = store.label_values(key, wanted)
    updates = {}
    for digest in wanted:
        repos = _repositories(current.get(digest, ""))
        if repos[:1] != [repository]:
            kept = [repo for repo in repos if repo != repository]
            updates[digest] = ",".join([repository, *kept][:MAX_REPOSITORIES])
    store.set_label_values(key, updates)
