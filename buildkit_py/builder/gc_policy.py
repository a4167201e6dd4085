"""The daemon's garbage collection as buildkitd does it: a list of rules
(``[[worker.oci.gcpolicy]]`` of a buildkitd.toml, or BuildKit's defaults), applied in
order after builds and at start.

Each rule, as BuildKit's cache manager applies a prune policy: the candidates are the
results not in use, last used before ``keepDuration`` (when given) and matching one of
its filters (none: all); internal records are spared unless ``all``. Without a size limit
every candidate goes; with one, the cache's whole size is compared with the bytes to keep
(``maxUsedSpace``, lowered so that ``minFreeSpace`` of the disk stays free, never below
``reservedSpace``) and candidates go one at a time, least recently and least often used
first, until it fits. Then the content store drops blobs nothing refers to.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from buildkit_py.api.usage import UsageItem
from buildkit_py.builder import gc_filters
from buildkit_py.builder.gc import collect_blobs, record_items, remove_mounts
from buildkit_py.builder.snapshot_sweep import sweep_unneeded_snapshots
from buildkit_py.config import GCPolicy, GCRule
from buildkit_py.units import DiskSpace

if TYPE_CHECKING:
    from buildkit_py.builder.core import Builder

# BuildKit's default caps (cmd/buildkitd/config, unix): keep 10% of the disk (at most
# 10 GB), use at most 80% (at most 100 GB), and try to leave 20% free.
_RESERVE_PERCENT, _RESERVE_MAX = 10, 10 * 10**9
_MAX_PERCENT, _MAX_MAX = 80, 100 * 10**9
_FREE_PERCENT = 20


@dataclass(frozen=True)
class PruneRule:
    """A :class:`GCRule` with its sizes in bytes for this disk."""

    all: bool
    filters: tuple[str, ...]
    keep_duration: float
    reserved_space: int
    max_used_space: int
    min_free_space: int


@dataclass(frozen=True)
class DiskStat:
    total: int
    free: int


def disk_stat(path: Path) -> DiskStat:
    st = os.statvfs(path)
    return DiskStat(st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize)


def default_rules(policy: GCPolicy, disk_total: int) -> list[GCRule]:
    """BuildKit's four rules when a buildkitd.toml gives no ``gcpolicy``."""
    reserved, max_used, min_free = (policy.reserved_space, policy.max_used_space,
                                    policy.min_free_space)
    if not (reserved or max_used or min_free):
        reserved = DiskSpace(percentage=_RESERVE_PERCENT)
        if reserved.as_bytes(disk_total) > _RESERVE_MAX:
            reserved = DiskSpace(bytes=_RESERVE_MAX)
        max_used = DiskSpace(percentage=_MAX_PERCENT)
        if max_used.as_bytes(disk_total) > _MAX_MAX:
            max_used = DiskSpace(bytes=_MAX_MAX)
        min_free = DiskSpace(percentage=_FREE_PERCENT)

    def capped(*, all_: bool = False, keep_duration: float = 0.0) -> GCRule:
        return GCRule(all=all_, keep_duration=keep_duration, reserved_space=reserved,
                      max_used_space=max_used, min_free_space=min_free)

    return [
        # easily reproduced data unused for two days, once the cache passes 512 MB
        GCRule(filters=("type==source.local", "type==exec.cachemount",
                        "type==source.git.checkout"),
               keep_duration=48 * 3600.0, max_used_space=DiskSpace(bytes=512 * 10**6)),
        capped(keep_duration=60 * 86400.0),  # anything unused for 60 days
        capped(),  # the cache under its cap
        capped(all_=True),  # internal records too, if that was not enough
    ]


def resolve_rules(policy: GCPolicy, root: Path) -> list[PruneRule]:
    """The rules the daemon applies (none unless a buildkitd.toml's [worker.oci] enables
    them), with percentages of the disk holding ``root`` in bytes."""
    if not policy.buildkitd or not policy.enabled:
        return []
    total = disk_stat(root).total
    rules = policy.rules or default_rules(policy, total)
    return [PruneRule(r.all, r.filters, r.keep_duration, r.reserved_space.as_bytes(total),
                      r.max_used_space.as_bytes(total), r.min_free_space.as_bytes(total))
            for r in rules]


def keep_bytes(total: int, free: int, rule: PruneRule) -> int:
    """How much of the cache a rule keeps (0: no size limit), as BuildKit computes it."""
    if not (rule.max_used_space or rule.reserved_space or rule.min_free_space):
        return 0
    keep = rule.max_used_space
    excess = rule.min_free_space - free
    if excess > 0:
        keep = total - excess if keep == 0 else min(keep, total - excess)
    elif rule.min_free_space and keep == 0:
        keep = total  # only minFreeSpace, and the disk has that free: nothing goes
    return max(keep, rule.reserved_space)


def _least_valuable_first(items: list[UsageItem]) -> list[UsageItem]:
    """BuildKit's order: rank by last use and by use count, the sum of both ranks."""
    by_used = sorted(items, key=lambda i: i.last_used)
    used_rank: dict[str, float] = {}
    rank, last = 1.0, None
    for i in by_used:
        if last is None or i.last_used > last:
            last = i.last_used
            rank += 1
        used_rank[i.id] = rank
    max_used = rank
    count_rank: dict[str, float] = {}
    rank, count = 1.0, 0
    for i in sorted(items, key=lambda i: i.usage_count):
        if i.usage_count != count:
            count = i.usage_count
            rank += 1
        count_rank[i.id] = rank
    max_count = rank
    return sorted(items, key=lambda i: used_rank[i.id] / max_used + count_rank[i.id] / max_count)


def apply_rule(builder: Builder, rule: PruneRule, now: float,
               free: int | None = None) -> list[UsageItem]:
    """Delete what one rule selects; returns the deleted results."""
    parsed = gc_filters.parse(rule.filters)
    items = record_items(builder)  # cache mounts are records of BuildKit's cache too
    total = sum(i.size for i in items)
    if free is None:
        free = disk_stat(builder.root).free if rule.min_free_space else 0
    limit = keep_bytes(total, free, rule)
    candidates = [i for i in items if not i.in_use
                  and not (rule.keep_duration and i.last_used > now - rule.keep_duration)
                  and gc_filters.matches(parsed, i)]
    # bkpy has no internal or frontend records: ``all`` selects nothing more
    if limit:
        doomed = []
        for item in _least_valuable_first(candidates):
            if total < limit:
                break
            doomed.append(item)
            total -= item.size
    else:
        doomed = candidates
    mounts = [i for i in doomed if i.record_type == gc_filters.MOUNT_TYPE]
    results = [i.id for i in doomed if i.record_type != gc_filters.MOUNT_TYPE]
    if results:
        builder.cache.remove_results(results)
    # a mount a build took meanwhile stays (its lock is held): not reported as removed
    return [i for i in doomed if i.record_type != gc_filters.MOUNT_TYPE] + \
        remove_mounts(builder, mounts)


def collect(builder: Builder, rules: list[PruneRule]) -> Iterator[UsageItem]:
    """Apply ``rules`` in order, then drop the snapshots and blobs nothing needs any more
    (the blobs of pulled images stay, as after a prune without ``--all``)."""
    now = time.time()
    deleted = False
    for rule in rules:
        for item in apply_rule(builder, rule, now):
            deleted = True
            yield item
    if deleted:
        sweep_unneeded_snapshots(builder.worker.sn, builder.cache)
        yield from collect_blobs(builder, False, now)
