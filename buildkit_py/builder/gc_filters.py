"""Which cache records a prune filter or GC policy filter selects (BuildKit's record
fields: ``type``, ``id``, ``description``, ``inuse``, ``mutable``/``immutable``,
``shared``/``private``, ``parents``), in containerd's filter syntax
(:func:`buildkit_py.units.parse_prune_filters`).

bkpy's cache results carry no record type; it is read from what they are: a ``local:``
result is the context (``source.local``), a git source's checkout is
``source.git.checkout``, everything else ``regular``. The instances of ``RUN
--mount=type=cache`` are ``exec.cachemount`` records (:mod:`buildkit_py.executor.cache_mounts`).
"""

from __future__ import annotations

from buildkit_py.api import prune_filters
from buildkit_py.api.usage import UsageItem
from buildkit_py.units import FilterSelector, parse_prune_filters

ParsedFilters = list[list[FilterSelector]]
MOUNT_TYPE = "exec.cachemount"


def record_type(result_id: str, description: str) -> str:
    """BuildKit's usage record type of a bkpy cache result."""
    if result_id.startswith("local:"):
        return "source.local"
    if description.startswith(("git://", "[internal] load git source")):
        return "source.git.checkout"
    return "regular"


def parse(filters: tuple[str, ...] | list[str]) -> ParsedFilters:
    """A GC rule's filters (checked when the config was read; unlike ``prune --filter``,
    a record type bkpy does not keep is no error in a policy: it selects nothing).
    ValueError for a malformed filter."""
    return parse_prune_filters(filters)


def usage_type(item: UsageItem) -> str:
    """The record type ``du`` shows and filters see for a ``disk_usage`` record."""
    if item.record_type in (MOUNT_TYPE, "content"):
        return item.record_type
    return record_type(item.id, item.description)


def matches(parsed: ParsedFilters, item: UsageItem) -> bool:
    """Whether ``item`` (a cache result of ``disk_usage``) matches ``parsed``: the fields
    as ``prune --filter`` sees them (:mod:`buildkit_py.api.prune_filters`)."""
    kind = MOUNT_TYPE if item.record_type == MOUNT_TYPE else record_type(item.id,
                                                                         item.description)
    return prune_filters.matches(parsed, kind=kind,
                                 result_id=item.id, description=item.description,
                                 in_use=item.in_use)
