"""Disk usage and pruning of a builder's state (``bkpy du``/``prune``, the daemon's GC).

Pruning removes cache results (and their snapshots) as :class:`CacheManager` decides,
``RUN --mount=type=cache`` instances not in use (records of type ``exec.cachemount``, as
BuildKit's), then blobs of the content store that no stored image and no surviving layer export
refer to. ``du --verify`` and ``prune --corrupt`` find and drop corrupted blobs instead
(:mod:`buildkit_py.content.integrity`). Builds share the state; a prune runs alone
(:class:`BuildGate`). No grpc here: the embedded CLI path uses it too.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from buildkit_py.api import prune_filters
from buildkit_py.api.usage import PruneOptions, UsageItem
from buildkit_py.builder.gc_filters import MOUNT_TYPE, record_type
from buildkit_py.builder.snapshot_sweep import sweep_unneeded_snapshots
from buildkit_py.content.integrity import drop_corrupt, find_corrupt
from buildkit_py.snapshot import SnapshotNotFoundError

if TYPE_CHECKING:
    from buildkit_py.builder.core import Builder


def mount_items(builder: Builder) -> list[UsageItem]:
    """The cache mounts' instances as ``exec.cachemount`` records."""
    return [UsageItem(r.id, r.size, r.created, r.last_used, r.description, r.usage_count,
                      r.in_use, MOUNT_TYPE) for r in builder.worker.cache_mounts.records()]


def record_items(builder: Builder) -> list[UsageItem]:
    """Every cache record: the cache results, then the cache mounts' instances."""
    return [UsageItem(e.result_id, e.size, e.created, e.last_used, e.description, e.keys,
                      e.in_use) for e in builder.cache.usage().entries] + mount_items(builder)


def remove_mounts(builder: Builder, items: list[UsageItem]) -> list[UsageItem]:
    """Delete these cache mount records; those a build holds meanwhile stay."""
    mounts = builder.worker.cache_mounts
    return [i for i in items if mounts.remove(i.id)]


def disk_usage(builder: Builder, verify: bool = False) -> list[UsageItem]:
    """Cache results and cache mounts, most recently used first, then the content store
    as one record; ``verify``: then one ``corrupt`` record per blob that does not match
    its digest."""
    items = sorted(record_items(builder), key=lambda i: -i.last_used)
    blobs = list(builder.store.walk())
    if blobs:
        referenced = builder.images.referenced()
        size = sum(b.size for b in blobs)
        newest = max(b.created_at for b in blobs)
        items.append(UsageItem(
            "content", size, newest, newest,
            f"content store: {len(blobs)} blobs, {len(referenced)} held by images",
            len(blobs), False, "content"))
    if verify:
        items += [UsageItem(c.digest, c.size, 0.0, 0.0, f"hashes to {c.actual}", 0, False,
                            "corrupt") for c in find_corrupt(builder.store)]
    return items


def _layer_blobs(builder: Builder) -> set[str]:
    """Layer blobs exported from snapshots that still exist (cheap to keep, slow to redo)."""
    keep: set[str] = set()
    for snapshot, digest in builder.layer_cache.entries():
        try:
            builder.worker.sn.stat(snapshot)
        except SnapshotNotFoundError:
            continue
        keep.add(digest)
    return keep


def prune(builder: Builder, opts: PruneOptions) -> Iterator[UsageItem]:
    """Delete what ``opts`` allows; yields one item per deleted result, then the blobs.

    Without ``all``, only cache results are limited by ``keep_duration``/``keep_storage``
    (none given: every result not in use goes, as ``buildctl prune`` does); ``all`` also
    drops blobs that only pulled base images needed.
    """
    if opts.corrupt:
        yield from _prune_corrupt(builder)
        return
    now = time.time()
    filters = prune_filters.parse(opts.filters)  # the daemon checks them too
    # records the filters spare are held as in use for the prune, which never takes those
    spared = [e.result_id for e in builder.cache.usage().entries
              if not prune_filters.matches(
                  filters, kind=record_type(e.result_id, e.description),
                  result_id=e.result_id, description=e.description, in_use=e.in_use)
              ] if filters else []
    mounts, keep_storage = _doomed_mounts(builder, opts, filters, set(spared), now)
    for rid in spared:
        builder.cache.mark_in_use(rid)
    try:
        doomed = builder.cache.prune(keep_duration=opts.keep_duration,
                                     keep_storage=keep_storage, now=now)
    finally:
        for rid in spared:
            builder.cache.unmark_in_use(rid)
    sweep_unneeded_snapshots(builder.worker.sn, builder.cache)
    for p in doomed:
        yield UsageItem(p.result_id, p.size, 0.0, 0.0, p.description, 0, False)
    yield from remove_mounts(builder, mounts)
    if filters:  # blobs are no cache records: a filtered prune names records only
        return
    yield from collect_blobs(builder, opts.all, now)


def _doomed_mounts(builder: Builder, opts: PruneOptions, filters: prune_filters.ParsedFilters,
                   spared: set[str], now: float) -> tuple[list[UsageItem], int | None]:
    """The cache mounts a prune takes, and the ``keep_storage`` left for cache results.
    As :meth:`CacheManager.prune` decides for results: a record goes when it is older
    than ``keep_duration`` or while everything exceeds ``keep_storage``, least recently
    used first across results and mounts."""
    ranked = opts.keep_duration is not None or opts.keep_storage is not None
    records = record_items(builder) if ranked else mount_items(builder)
    every_mount = [i for i in records if i.record_type == MOUNT_TYPE]
    candidates = {i.id for i in every_mount if not i.in_use and (
        not filters or prune_filters.matches(filters, kind=MOUNT_TYPE, result_id=i.id,
                                             description=i.description, in_use=False))}
    if not ranked:
        return [i for i in every_mount if i.id in candidates], None
    total = sum(i.size for i in records)
    doomed: list[UsageItem] = []
    for item in sorted(records, key=lambda i: i.last_used):
        mount = item.record_type == MOUNT_TYPE
        if item.in_use or item.id in spared or (mount and item.id not in candidates):
            continue
        too_old = opts.keep_duration is not None and item.last_used < now - opts.keep_duration
        too_big = opts.keep_storage is not None and total > opts.keep_storage
        if too_old or too_big:
            total -= item.size
            if mount:
                doomed.append(item)
    if opts.keep_storage is None:
        return doomed, None
    kept = sum(i.size for i in every_mount) - sum(i.size for i in doomed)
    return doomed, max(0, opts.keep_storage - kept)


def collect_blobs(builder: Builder, all_: bool, now: float) -> Iterator[UsageItem]:
    """Drop the blobs no stored image and no surviving layer export refers to (without
    ``all_``, pulled manifests and configs stay); one item for them all."""
    keep = builder.images.referenced() | _layer_blobs(builder)
    if not all_:
        # pulled manifests and configs are not in the image store; keep what is not a layer
        keep |= {b.digest for b in builder.store.walk() if b.size < 1 << 20 and
                 _is_json(builder, b.digest)}
    result = builder.store.gc(keep)
    if result.removed:
        yield UsageItem("content", result.bytes_freed, now, now,
                        f"{len(result.removed)} unreferenced blobs", len(result.removed),
                        False, "content")


def _prune_corrupt(builder: Builder) -> Iterator[UsageItem]:
    """``prune --corrupt``: corrupted blobs, the manifests naming them and the image names
    of images that lost one (see :mod:`buildkit_py.content.integrity`); nothing else."""
    result = drop_corrupt(builder.store, builder.images)
    builder.layer_cache.forget({c.digest for c in result.corrupt}
                               | {d for d, _ in result.dependents})
    for c in result.corrupt:
        yield UsageItem(c.digest, c.size, 0.0, 0.0, f"corrupted: hashes to {c.actual}", 0,
                        False, "corrupt")
    for digest, size in result.dependents:
        yield UsageItem(digest, size, 0.0, 0.0, "manifest naming a corrupted blob", 0, False,
                        "content")
    for name in result.images:
        yield UsageItem(name, 0, 0.0, 0.0, "image lost a blob: build or import it again", 0,
                        False, "image")


def _is_json(builder: Builder, digest: str) -> bool:
    try:
        with builder.store.open(digest) as f:
            return f.read(1) in (b"{", b"[")
    except OSError:
        return False


class BuildGate:
    """Builds run concurrently (shared); a prune waits for them and blocks new ones."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._builds = 0
        self._pruning = False

    @contextlib.contextmanager
    def build(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._pruning)
            self._builds += 1
        try:
            yield
        finally:
            with self._cond:
                self._builds -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def prune(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._pruning)
            self._pruning = True
            self._cond.wait_for(lambda: self._builds == 0)
        try:
            yield
        finally:
            with self._cond:
                self._pruning = False
                self._cond.notify_all()

    @property
    def idle(self) -> bool:
        with self._cond:
            return self._builds == 0 and not self._pruning
