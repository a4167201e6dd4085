"""``bkpy imagetools inspect|create``: images in registries (and the local image store)."""

from __future__ import annotations

import sys

import click

from buildkit_py.errors import UsageError


@click.group("imagetools")
def imagetools() -> None:
    """Inspect images in registries and combine them into multi-platform indexes."""


@imagetools.command("inspect")
@click.argument("ref")
@click.option("--raw", is_flag=True, help="Print the exact manifest or index bytes.")
@click.option("--format", "fmt", metavar="TEMPLATE",
              help="Template subset: {{.Name}}, {{.Manifest.Digest}}, {{json .Manifest}}, "
                   "{{json .Image}}, index, print, println.")
@click.option("--local", is_flag=True,
              help="Read the builder's local image store instead of the registry.")
def inspect_cmd(ref: str, raw: bool, fmt: str | None, local: bool) -> None:
    """Show the manifest or index REF points at."""
    # reason: imagetools and the stores (~20 ms) stay off --help, which imports every command
    from buildkit_py.imagetools.access import Access
    from buildkit_py.imagetools.inspect import inspect
    from buildkit_py.imagetools.sources import LocalSource, ManifestSource, RegistrySource
    from buildkit_py.imagetools.template import parse
    from buildkit_py.registry.reference import parse_reference

    if raw and fmt is not None:
        raise UsageError("--raw and --format cannot be combined")
    template = parse(fmt) if fmt is not None else None  # bad templates fail before any I/O
    r = parse_reference(ref)
    with Access() as acc:
        source: ManifestSource = (LocalSource(acc.images, acc.content, r) if local
                                  else RegistrySource(acc.registry, r))
        info = inspect(source)
        if raw:
            sys.stdout.buffer.write(info.raw)
            sys.stdout.flush()
            return
        text = info.human() if template is None else info.render(template)
    click.echo(text, nl=False)


@imagetools.command("create")
@click.argument("sources", nargs=-1)
@click.option("-t", "--tag", "tags", multiple=True, metavar="REF",
              help="Push the result as REF (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print the index instead of pushing it.")
@click.option("--append", is_flag=True,
              help="Add the manifests already at the first -t to the result.")
def create_cmd(sources: tuple[str, ...], tags: tuple[str, ...], dry_run: bool,
               append: bool) -> None:
    """Combine images and indexes into one index.

    SOURCES are references by tag or digest; a bare sha256:... names a digest in the
    first -t repository."""
    # reason: imagetools and the stores (~20 ms) stay off --help, which imports every command
    from buildkit_py.imagetools.access import Access
    from buildkit_py.imagetools.create import combine, parse_sources, parse_targets, push
    from buildkit_py.imagetools.sources import RegistrySource

    targets = parse_targets(tags)
    if not targets and not dry_run:
        raise UsageError("imagetools create needs at least one -t REF (or --dry-run)")
    if append and not targets:
        raise UsageError("--append needs -t: it adds to the image at the first -t")
    refs = parse_sources(sources, targets)
    if append:
        refs.insert(0, targets[0])
    if not refs:
        raise UsageError("imagetools create needs at least one source image",
                         hint="e.g. bkpy imagetools create -t reg/app:1 reg/app:amd64 "
                              "reg/app:arm64")
    with Access() as acc:
        combined = combine([RegistrySource(acc.registry, r) for r in refs])
        if dry_run:
            sys.stdout.buffer.write(combined.body + b"\n")
            sys.stdout.flush()
            return
        push(combined, targets, acc.registry, acc.content,
             report=lambda line: click.echo(line, err=True))
    for target in targets:
        click.echo(f"{target}@{combined.digest}")
