"""Which committed snapshots may go: those no cache result needs, itself or as an ancestor.

A committed snapshot outside every cache result's chain takes space ``bkpy du`` cannot
show. ``prune`` sweeps them all after dropping results (unpacked image layers not yet
used by a build included: they are made again from the content store when needed).
Crash recovery sweeps only the layers steps committed: an owner that died between
committing a layer and recording it leaves one nothing will ever find again.
Call it only with no build running (the daemon's gate, or the state root's lock).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from buildkit_py.snapshot import DBSnapshotter, SnapshotNotFoundError
from buildkit_py.snapshot.types import Kind
from buildkit_py.solver.cache import CacheManager


def sweep_unneeded_snapshots(sn: DBSnapshotter, cache: CacheManager,
                             only: Callable[[str], bool] | None = None) -> int:
    """Remove committed snapshots no cache result needs (and, given ``only``, for which
    it is true), children before parents; returns how many went."""
    infos = {i.key: i for i in sn.walk()}
    live = [e.result_id.removeprefix("snap:") for e in cache.usage().entries
            if e.result_id.startswith("snap:")]
    needed: set[str] = set()
    for key in live:
        while key and key in infos and key not in needed:
            needed.add(key)
            key = infos[key].parent or ""
    children: dict[str, int] = {}
    for info in infos.values():
        if info.parent:
            children[info.parent] = children.get(info.parent, 0) + 1
    pending = {k for k, i in infos.items() if k not in needed and i.kind is Kind.COMMITTED
               and (only is None or only(k))}
    removed = 0
    while pending:
        ready = [k for k in pending if not children.get(k)]
        if not ready:
            break  # the rest still has an uncommitted child (a build in flight)
        for key in ready:
            pending.discard(key)
            with contextlib.suppress(SnapshotNotFoundError):
                sn.remove(key)
                removed += 1
            parent = infos[key].parent
            if parent:
                children[parent] -= 1
    return removed
