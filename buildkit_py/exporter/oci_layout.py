"""An OCI image layout, written as a folder or a tar (``type=oci`` and ``type=docker``).

Every blob is checked against its digest as it is read from the content store (read
once: hashed while streamed into the tar, or while hardlinked/copied into the folder).
A corrupted blob fails the export, and the output is left as it was: a tar file is
written beside and renamed only when complete; a folder gets its blobs first and its
``index.json`` last, and the blobs a failed export placed are removed again.
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

from buildkit_py.content.store import ContentStore
from buildkit_py.content.verify import copy_verified
from buildkit_py.exporter.image import BuiltImage
from buildkit_py.exporter.manifest import Blob, Descriptor, canonical_json, index_blob
from buildkit_py.exporter.output_file import output_file
from buildkit_py.registry.reference import parse_reference

LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'


def blob_path(digest: str) -> str:
    alg, hexd = digest.split(":", 1)
    return f"blobs/{alg}/{hexd}"


def _digests(images: list[BuiltImage], top: Blob | None) -> list[str]:
    seen: dict[str, None] = {}
    if top is not None:
        seen[top.descriptor.digest] = None
    for img in images:
        seen[img.manifest.descriptor.digest] = None
        seen[img.config.descriptor.digest] = None
        for layer in img.layers:
            seen[layer.digest] = None
    return list(seen)


def layout_index(images: list[BuiltImage], names: list[str], *, oci: bool,
                 multi: bool, top: Descriptor | None = None) -> tuple[bytes, Blob | None]:
    """``index.json`` bytes (and the image index blob when several platforms). ``top``:
    the image's descriptor as made (the index, already in the store, or the manifest),
    whose annotations (``--annotation`` descriptor kinds) the entry carries too."""
    made: Blob | None = None
    if top is not None:
        target = top
    elif multi:
        made = index_blob([Descriptor(i.manifest.descriptor.media_type,
                                     i.manifest.descriptor.digest,
                                     i.manifest.descriptor.size, platform=i.platform)
                          for i in images], oci=oci)
        target = made.descriptor
    else:
        target = images[0].manifest.descriptor
    base = dict(top.annotations) if top is not None else {}
    # one entry per name, named as BuildKit names them (docker.io/library/NAME:latest)
    entries = [Descriptor(target.media_type, target.digest, target.size,
                          annotations={**base, **_name_annotations(n)})
               for n in normalized_names(names)] or [
        Descriptor(target.media_type, target.digest, target.size, annotations=base)]
    return canonical_json(_index_json(entries)), made


def normalized_names(names: Sequence[str]) -> list[str]:
    """The names as BuildKit's layout exporters write them: fully qualified, ``:latest``
    added to a name with neither tag nor digest."""
    return [str(parse_reference(n)) for n in names]


def _name_annotations(name: str) -> dict[str, str]:
    ref = parse_reference(name)
    out = {"io.containerd.image.name": name}
    if ref.tag:
        out["org.opencontainers.image.ref.name"] = ref.tag
    return out


def _index_json(entries: list[Descriptor]) -> dict[str, object]:
    return {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [e.to_json() for e in entries]}


def write_layout(store: ContentStore, images: list[BuiltImage], dest: str, *,
                 names: list[str], tar: bool = True, oci: bool = True, multi: bool = False,
                 files: Sequence[tuple[str, bytes]] = (), top: Descriptor | None = None
                 ) -> None:
    """Write the layout to ``dest`` (``-`` = stdout when ``tar``), with ``files`` (name,
    bytes) beside ``oci-layout`` and ``index.json``; ``top``: see :func:`layout_index`."""
    index, made = layout_index(images, names, oci=oci, multi=multi, top=top)
    if made is not None:
        store.write(made.data, made.descriptor.digest)
    extra: list[tuple[str, bytes]] = [("oci-layout", LAYOUT), ("index.json", index), *files]
    digests = _digests(images, made)
    if top is not None and multi:
        digests.insert(0, top.digest)
    if not tar:
        _write_dir(store, Path(dest), digests, extra)
        return
    with output_file(dest) as f:
        _write_tar(store, f, digests, extra)


def _write_dir(store: ContentStore, root: Path, digests: Iterable[str],
               extra: list[tuple[str, bytes]]) -> None:
    """Blobs first, each checked against its digest, then ``index.json`` and the rest:
    a failed export leaves no new layout files, and the blobs it placed are removed."""
    blobs = root / "blobs" / "sha256"
    made = [d for d in (root, root / "blobs", blobs) if not d.exists()]
    blobs.mkdir(parents=True, exist_ok=True)
    placed: list[Path] = []
    try:
        for digest in digests:
            target = root / blob_path(digest)
            if target.exists():
                continue
            place_blob(store, digest, target)
            placed.append(target)
    except BaseException:
        for path in placed:
            path.unlink(missing_ok=True)
        for d in reversed(made):
            with contextlib.suppress(OSError):
                d.rmdir()
        raise
    for name, data in extra:
        (root / name).write_bytes(data)


def place_blob(store: ContentStore, digest: str, target: Path) -> None:
    """Put the blob at ``target``, reading it once: hardlinked (blobs are immutable, so
    share rather than copy) then hashed, or copied while hashed across filesystems."""
    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(store.path(digest), tmp)
        except OSError:
            with store.open_verified(digest) as src, open(tmp, "wb") as out:
                copy_verified(src, out)
        else:
            store.verify(digest)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _write_tar(store: ContentStore, out: BinaryIO, digests: Iterable[str],
               extra: list[tuple[str, bytes]]) -> None:
    """Each blob is hashed as it is streamed into the tar: a corrupted one stops the
    export with CorruptContentError before its last bytes are written."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for d in ("blobs/", "blobs/sha256/"):
            ti = tarfile.TarInfo(d)
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755
            tf.addfile(ti)
        for name, data in extra:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            tf.addfile(ti, io.BytesIO(data))
        for digest in digests:
            with store.open_verified(digest) as f:
                ti = tarfile.TarInfo(blob_path(digest))
                ti.size = f.size
                ti.mode = 0o644
                tf.addfile(ti, f)
