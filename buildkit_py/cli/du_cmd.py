"""``bkpy du`` and ``bkpy prune``: build cache usage of the selected builder."""

from __future__ import annotations

import time
from datetime import datetime

import click

from buildkit_py.api import prune_filters
from buildkit_py.api.usage import PruneOptions, UsageItem
from buildkit_py.builder import gc_filters
from buildkit_py.client.base import BuilderClient
from buildkit_py.client.builders import BuilderStore, open_client
from buildkit_py.config import parse_size
from buildkit_py.errors import UsageError, UserError
from buildkit_py.units import human_duration, human_size, parse_prune_filters


def _ago(ts: float) -> str:
    return f"{human_duration(time.time() - ts)} ago" if ts else ""


def _go_time(ts: float) -> str:
    """Go's ``time.Time.String()`` in the local zone, as buildx prints "Created at"."""
    t = datetime.fromtimestamp(ts).astimezone()
    frac = f"{t.microsecond:06d}".rstrip("0")
    return f"{t:%Y-%m-%d %H:%M:%S}{'.' + frac if frac else ''} {t:%z %Z}"


def _table(rows: list[list[str]]) -> None:
    """Columns as docker's formatter lays them out (tabwriter: at least 10 wide, 3 apart)."""
    widths = [max(10, max(len(r[c]) for r in rows) + 3) for c in range(len(rows[0]) - 1)]
    for r in rows:
        click.echo("".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)) + r[-1])


def _client(builder: str | None) -> BuilderClient:
    store = BuilderStore()
    return open_client(store.selected(builder or None), store)


def _totals(items: list[UsageItem]) -> None:
    click.echo(f"Reclaimable:\t{human_size(sum(i.size for i in items if i.reclaimable))}")
    click.echo(f"Total:\t\t{human_size(sum(i.size for i in items))}")


def _report_corrupt(corrupt: list[UsageItem]) -> None:
    """``du --verify``'s findings: fails (exit 1) when any blob is corrupted."""
    click.echo("")
    if not corrupt:
        click.echo("Verified: every content blob matches its digest")
        return
    click.echo(f"{'CORRUPTED BLOB':<72} {'SIZE':<12} HASHES TO")
    for i in corrupt:
        hashes_to = i.description.removeprefix("hashes to ")
        click.echo(f"{i.id:<72} {human_size(i.size):<12} {hashes_to}")
    n = len(corrupt)
    raise UserError(f"{n} corrupted blob{'s' if n > 1 else ''} in the content store",
                    hint="remove them with `bkpy prune --corrupt`; the next build re-creates "
                         "or re-pulls them")


@click.command("du")
@click.option("--verbose", is_flag=True, help="Show every record in detail.")
@click.option("--verify", is_flag=True,
              help="Also hash every content blob and list those that do not match their "
                   "digest (exit status 1 if any).")
@click.option("--filter", "filters", multiple=True,
              help="Only records that match (repeatable), as `prune --filter` selects them; "
                   "until=DURATION: those not used for that long.")
@click.option("--builder", envvar="BKPY_BUILDER", help="Builder to use.")
def du(verbose: bool, verify: bool, filters: tuple[str, ...], builder: str | None) -> None:
    """Show the build cache's disk usage."""
    client = _client(builder)
    try:
        everything = client.disk_usage(verify)
    finally:
        client.close()
    items = [i for i in everything if i.record_type != "corrupt"]
    corrupt = [i for i in everything if i.record_type == "corrupt"]
    if filters:
        keep, record_filters = prune_filters.from_flags(filters)
        parsed = parse_prune_filters(list(record_filters))
        since = time.time() - keep if keep is not None else None
        items = [i for i in items if gc_filters.matches(parsed, i)
                 and (since is None or (i.last_used or i.created) < since)]
    if verbose:
        for i in items:
            kind = gc_filters.usage_type(i)
            click.echo(f"{'ID:':<14}{i.id}")
            for label, value in (("Created at:", _go_time(i.created) if i.created else ""),
                                 ("Mutable:", str(kind == gc_filters.MOUNT_TYPE).lower()),
                                 ("Reclaimable:", str(i.reclaimable).lower()),
                                 ("Shared:", "false"), ("Size:", human_size(i.size)),
                                 ("Description:", i.description),
                                 ("Usage count:", str(i.usage_count)),
                                 ("Last used:", _ago(i.last_used)), ("Type:", kind)):
                if value or label not in ("Description:", "Last used:"):
                    click.echo(f"{label:<14}{value}")
            click.echo("")
    else:
        # as buildx marks them: * after the ID of a mutable record (a cache mount's)
        _table([["ID", "RECLAIMABLE", "SIZE", "LAST ACCESSED"]]
               + [[i.id + ("*" if i.record_type == gc_filters.MOUNT_TYPE else ""),
                   str(i.reclaimable).lower(), human_size(i.size), _ago(i.last_used)]
                  for i in items])
    if not filters:  # buildx prints no totals for a filtered list
        _totals(items)
    if verify:
        _report_corrupt(corrupt)


@click.command("prune")
@click.option("-a", "--all", "all_", is_flag=True,
              help="Also remove blobs only pulled base images needed.")
@click.option("--keep-storage", help="Keep this much cache (e.g. 5GB), least recently used "
                                     "goes first.")
@click.option("--filter", "filters", multiple=True,
              help="Only records that match (repeatable): until=DURATION (keep newer "
                   "records), id, description, type (regular, source.local, "
                   "exec.cachemount), inuse, "
                   "mutable, immutable, shared, private; KEY=VALUE, KEY!=VALUE, KEY~=REGEXP.")
@click.option("--corrupt", is_flag=True,
              help="Only remove content blobs that do not match their digest (see `du "
                   "--verify`), the manifests naming them and images that lost one.")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.option("--verbose", is_flag=True, help="List what was removed.")
@click.option("--builder", envvar="BKPY_BUILDER", help="Builder to use.")
def prune(all_: bool, keep_storage: str | None, filters: tuple[str, ...], corrupt: bool,
          force: bool, verbose: bool, builder: str | None) -> None:
    """Remove build cache."""
    if corrupt and (all_ or keep_storage or filters):
        raise UsageError("--corrupt cannot be combined with --all, --keep-storage or --filter",
                         hint="run `bkpy prune --corrupt` on its own")
    keep_duration, record_filters = prune_filters.from_flags(filters)
    opts = PruneOptions(all=all_, keep_duration=keep_duration,
                        keep_storage=parse_size(keep_storage) if keep_storage else None,
                        corrupt=corrupt, filters=record_filters)
    if corrupt:
        _prune_corrupt(opts, force, builder)
        return
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
                click.echo(f"{item.id:<50} {human_size(item.size):<12} {item.description}")
    finally:
        client.close()
    click.echo(f"Total:\t{human_size(total)}")


def _prune_corrupt(opts: PruneOptions, force: bool, builder: str | None) -> None:
    """``prune --corrupt``: always lists what went, as it is rarely expected."""
    if not force:
        click.confirm("WARNING! This will remove corrupted content blobs and the images "
                      "that use them. Are you sure you want to continue?", abort=True, err=True)
    client = _client(builder)
    total = blobs = 0
    try:
        for item in client.prune(opts):
            total += item.size
            if item.record_type == "corrupt":
                blobs += 1
                click.echo(f"removed corrupted blob {item.id} ({human_size(item.size)}, "
                           f"{item.description.removeprefix('corrupted: ')})")
            elif item.record_type == "image":
                click.echo(f"removed image {item.id}: {item.description}")
            else:
                click.echo(f"removed {item.id} ({item.description})")
    finally:
        client.close()
    if not blobs:
        click.echo("No corrupted blobs found")
    click.echo(f"Total:\t{human_size(total)}")
