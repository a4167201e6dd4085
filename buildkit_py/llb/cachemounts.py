"""Which ``RUN --mount=type=cache`` directories a definition uses, by cache id.

The id rule lives here once: the mount's ``id`` option, else its target path (as
BuildKit). The worker keys cache directories by it; the cache exporter asks which of a
build's caches can travel (those with no ``from=`` source: a seeded cache is keyed by a
local result and means nothing on another machine).
"""

from __future__ import annotations

from buildkit_py.llb import ops_pb2
from buildkit_py.llb.definition import Definition


def cache_mount_id(mount: ops_pb2.Mount) -> str:
    """The cache id of a cache mount (before any seed suffix the worker adds)."""
    return mount.cache_opt.id or mount.dest


def portable_cache_ids(definition: Definition) -> list[str]:
    """Ids of the unseeded cache mounts of every exec op, in definition order."""
    ids: dict[str, None] = {}
    for digest in definition.digests():
        op = definition[digest]
        if not op.HasField("exec"):
            continue
        for m in op.exec.mounts:
            if m.mount_type == ops_pb2.MOUNT_TYPE_CACHE and m.input < 0:
                ids[cache_mount_id(m)] = None
    return list(ids)
