"""``bkpy images`` and ``bkpy image rm|import``: the builder's local image store."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import click

from buildkit_py.config import load_config
from buildkit_py.errors import UserError


@contextlib.contextmanager
def _store() -> Iterator[object]:
    # reason: the image store (~10 ms, sqlite) stays off --help, which imports every command
    from buildkit_py.content.images import ImageStore
    from buildkit_py.content.store import ContentStore

    root = load_config().root
    content = ContentStore(root / "content")
    images = ImageStore(root / "images", content)
    try:
        yield images
    finally:
        images.close()
        content.close()


def _name(ref: str) -> str:
    # reason: ~1.5 ms on --help, which imports every command
    from buildkit_py.registry.reference import parse_reference

    return str(parse_reference(ref))


@click.command("images")
@click.option("-q", "--quiet", is_flag=True, help="Only show digests.")
def images(quiet: bool) -> None:
    """List images in the local image store."""
    # reason: the image store (~10 ms, sqlite) stays off --help, which imports every command
    from buildkit_py.content.images import ImageStore

    with _store() as store:
        assert isinstance(store, ImageStore)
        records = store.all()
    if quiet:
        for r in records:
            click.echo(r.digest)
        return
    click.echo(f"{'NAME':<50} {'DIGEST':<20} {'CREATED':<20}")
    for r in records:
        created = datetime.fromtimestamp(r.created, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"{r.name:<50} {r.digest[7:19]:<20} {created:<20}")


@click.group("image")
def image() -> None:
    """Manage the local image store."""


@image.command("rm")
@click.argument("refs", nargs=-1, required=True)
def image_rm(refs: tuple[str, ...]) -> None:
    """Remove images by name (blobs are freed by `bkpy prune`)."""
    # reason: the image store (~10 ms, sqlite) stays off --help, which imports every command
    from buildkit_py.content.images import ImageStore

    missing = []
    with _store() as store:
        assert isinstance(store, ImageStore)
        for ref in refs:
            if store.remove(_name(ref)):
                click.echo(f"Untagged: {ref}")
            else:
                missing.append(ref)
    if missing:
        raise UserError(f"no such image: {', '.join(missing)}", hint="see `bkpy images`")


@image.command("import")
@click.argument("archive", type=click.Path(exists=True, path_type=Path))
@click.argument("ref")
def image_import(archive: Path, ref: str) -> None:
    """Import an OCI layout (tar or folder) or a `docker save` tarball as REF."""
    # reason: the embedded client and image store (~20 ms) stay off --help (every command)
    from buildkit_py.client.embedded import open_builder
    from buildkit_py.content.images import ImageStore

    name = _name(ref)
    with _store() as store:
        assert isinstance(store, ImageStore)
        previous = store.get(name)
        rec = store.import_archive(archive, name)
    # Like `docker load`: the layers are extracted now, not by the first build using them.
    try:
        with open_builder(load_config()) as builder:
            builder.sources.unpack_local(builder.worker, name)
    except BaseException:
        # an image that cannot be extracted (e.g. a layer that is not its diff_id) is not
        # kept; the name goes back to what it named before
        with _store() as store:
            assert isinstance(store, ImageStore)
            if previous is None:
                store.remove(name)
            else:
                store.put(previous.name, previous.media_type, previous.digest, previous.size,
                          previous.created)
        raise
    click.echo(f"{name} {rec.digest}")
