"""``bkpy du`` and ``bkpy prune``: build cache usage of the selected builder."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import click

from buildkit_py.client.base import BuilderClient, PruneOptions, UsageItem
from buildkit_py.errors import UsageError


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.2f}{unit}"
        value /= 1000
    return f"{n}B"


def _ago(ts: float) -> str:
    if not ts:
        return ""
    secs = max(0.0, time.time() - ts)
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if secs >= length:
            n = int(secs // length)
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "Less than a minute ago" if secs >= 1 else "Just now"


def _client(builder: str | None) -> BuilderClient:
    from buildkit_py.client.builders import BuilderStore, open_client

    store = BuilderStore()
    return open_client(store.selected(builder or None), store)


def _totals(items: list[UsageItem]) -> None:
    click.echo(f"{'Reclaimable:':<16}{_size(sum(i.size for i in items if i.reclaimable))}")
    click.echo(f"{'Total:':<16}{_size(sum(i.size for i in items))}")


@click.command("du")
@click.option("--verbose", is_flag=True, help="Show every record in detail.")
@click.option("--builder", envvar="BKPY_BUILDER", help="Builder to use.")
def du(verbose: bool, builder: str | None) -> None:
    """Show the build cache's disk usage."""
    client = _client(builder)
    try:
        items = client.disk_usage()
    finally:
        client.close()
    if verbose:
        for i in items:
            created = datetime.fromtimestamp(i.created, tz=UTC).strftime(
                "%Y-%m-%d %H:%M:%S UTC") if i.created else ""
            for label, value in (("ID:", i.id), ("Type:", i.record_type),
                                 ("Created at:", created), ("Reclaimable:", str(i.reclaimable)),
                                 ("In use:", str(i.in_use)), ("Size:", _size(i.size)),
                                 ("Description:", i.description),
                                 ("Usage count:", str(i.usage_count)),
                                 ("Last used:", _ago(i.last_used))):
                click.echo(f"{label:<16}{value}")
            click.echo("")
    else:
        click.echo(f"{'ID':<50} {'RECLAIMABLE':<12} {'SIZE':<12} LAST ACCESSED")
        for i in items:
            rid = i.id if len(i.id) <= 48 else i.id[:47] + "…"
            mark = "*" if i.in_use else ""
            click.echo(f"{rid + mark:<50} {str(i.reclaimable).lower():<12} "
                       f"{_size(i.size):<12} {_ago(i.last_used)}")
    _totals(items)


def _filters(values: tuple[str, ...]) -> float | None:
    keep: float | None = None
    for f in values:
        key, sep, value = f.partition("=")
        if key == "until" and sep:
            from buildkit_py.config import parse_duration

            keep = parse_duration(value)
        else:
            raise UsageError(f"--filter {f!r}: unsupported", hint="use until=DURATION (e.g. 24h)")
    return keep


@click.command("prune")
@click.option("-a", "--all", "all_", is_flag=True,
              help="Also remove blobs only pulled base images needed.")
@click.option("--keep-storage", help="Keep this much cache (e.g. 5GB), least recently used "
                                     "goes first.")
@click.option("--filter", "filters", multiple=True, help="until=DURATION: keep newer records.")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.option("--verbose", is_flag=True, help="List what was removed.")
@click.option("--builder", envvar="BKPY_BUILDER", help="Builder to use.")
def prune(all_: bool, keep_storage: str | None, filters: tuple[str, ...], force: bool,
          verbose: bool, builder: str | None) -> None:
    """Remove build cache."""
    from buildkit_py.config import parse_size

    opts = PruneOptions(all=all_, keep_duration=_filters(filters),
                        keep_storage=parse_size(keep_storage) if keep_storage else None)
    if not force:
        what = "all build cache" if opts == PruneOptions(all=all_) else "some build cache"
        click.confirm(f"WARNING! This will remove {what}. Are you sure you want to continue?",
                      abort=True, err=True)
    client = _client(builder)
    total = 0
    try:
        for item in client.prune(opts):
            total += item.size
            if verbose:
                click.echo(f"{item.id:<50} {_size(item.size):<12} {item.description}")
    finally:
        client.close()
    click.echo(f"Total:\t{_size(total)}")
