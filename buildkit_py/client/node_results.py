"""Joining what the nodes of a multi-node builder built into one result.

Every node exports its platforms to the client as an OCI layout folder; here those layouts
become one image index (with ``imagetools create``'s combine), which is pushed under every
tag or written out as one OCI / docker layout. Per-node tarballs of ``type=tar`` become one
tarball with a folder per platform.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buildkit_py.content.store import ContentStore
from buildkit_py.errors import BuildError
from buildkit_py.exporter.output_file import output_file
from buildkit_py.imagetools.access import Access
from buildkit_py.imagetools.create import combine, parse_targets, push
from buildkit_py.imagetools.sources import Blob, Fetched, media_type_of, parse_document
from buildkit_py.registry import mediatypes as mt
from buildkit_py.registry.reference import Reference

if TYPE_CHECKING:
    from buildkit_py.imagetools.create import Combined

# No reference parsed from user input has this domain (it lacks "." and ":"), so
# ``imagetools create``'s push never tries to pull or mount from a layout source.
LAYOUT_DOMAIN = "node-layout"
_LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'


class LayoutSource:
    """A ``ManifestSource`` over an OCI layout folder holding one image (or index)."""

    def __init__(self, root: Path, node: str) -> None:
        self.path = root
        self.ref = Reference(LAYOUT_DOMAIN, node.lower())
        self.node = node

    def _read(self, digest: str) -> bytes:
        alg, _, hexd = digest.partition(":")
        try:
            data = (self.path / "blobs" / alg / hexd).read_bytes()
        except (OSError, ValueError):
            raise BuildError(f"node {self.node} exported no blob {digest}") from None
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise BuildError(f"blob {digest} from node {self.node} is corrupted")
        return data

    def root(self) -> Fetched:
        try:
            index = parse_document((self.path / "index.json").read_bytes(),
                                   f"index.json of node {self.node}")
        except OSError as err:
            raise BuildError(f"node {self.node} exported no OCI layout: {err}") from None
        entries = index.get("manifests")
        # one entry per image name, all for the same image
        if not isinstance(entries, list) or not entries \
                or not all(isinstance(e, dict) for e in entries) \
                or len({e.get("digest") for e in entries}) != 1:
            raise BuildError(f"the OCI layout of node {self.node} should name one image")
        desc = Blob.from_json(entries[0])
        body = self._read(desc.digest)
        return Fetched(media_type_of(body, desc.media_type, desc.digest), desc.digest, body)

    def manifest(self, digest: str) -> Fetched:
        body = self._read(digest)
        return Fetched(media_type_of(body, "", digest), digest, body)

    def blob(self, desc: Blob) -> bytes:
        return self._read(desc.digest)

    def blob_files(self) -> dict[str, Path]:
        folder = self.path / "blobs" / "sha256"
        return {f"sha256:{p.name}": p for p in folder.iterdir()} if folder.is_dir() else {}


class JoinedImage:
    """One image index over the nodes' layouts, and every blob under it."""

    def __init__(self, layouts: Sequence[tuple[str, Path]]) -> None:
        sources = [LayoutSource(path, node) for node, path in layouts]
        self.combined: Combined = combine(sources)
        self.blobs: dict[str, Path] = {}
        for src in sources:
            for digest, path in src.blob_files().items():
                self.blobs.setdefault(digest, path)

    @property
    def digest(self) -> str:
        return self.combined.digest

    def descriptor(self) -> dict[str, Any]:
        c = self.combined
        return {"mediaType": c.media_type, "digest": c.digest, "size": len(c.body)}

    def push(self, names: Sequence[str], work: Path,
             report: Callable[[str], None] = lambda _: None) -> None:
        """Push the per-platform manifests by digest, then the index under every name."""
        targets = parse_targets(names)
        with ContentStore(work) as store, Access() as access:
            for digest, path in self.blobs.items():
                _link(path, store.blobs_dir / digest.split(":", 1)[1])
            push(self.combined, targets, access.registry, store, report)

    def write_layout(self, dest: str, names: Sequence[str], *, tar: bool,
                     docker: bool) -> None:
        """One OCI layout (``docker``: with ``manifest.json``) as a folder or a tar."""
        files = [("oci-layout", _LAYOUT_FILE), ("index.json", self._layout_index(names))]
        if docker:
            files.append(("manifest.json", self._docker_manifest(names)))
        index_file = ("blobs/sha256/" + self.digest.split(":", 1)[1], self.combined.body)
        if not tar:
            root = Path(dest)
            (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
            for digest, path in self.blobs.items():
                _link(path, root / "blobs" / "sha256" / digest.split(":", 1)[1])
            for name, data in [index_file, *files]:
                (root / name).write_bytes(data)
            return
        with output_file(dest) as out, tarfile.open(fileobj=out, mode="w|",
                                                format=tarfile.PAX_FORMAT) as tf:
            for folder in ("blobs/", "blobs/sha256/"):
                ti = tarfile.TarInfo(folder)
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            for name, data in [*files, index_file]:
                _add_bytes(tf, name, data)
            for digest, path in sorted(self.blobs.items()):
                ti = tarfile.TarInfo("blobs/sha256/" + digest.split(":", 1)[1])
                ti.size, ti.mode = path.stat().st_size, 0o644
                with open(path, "rb") as f:
                    tf.addfile(ti, f)

    def _layout_index(self, names: Sequence[str]) -> bytes:
        desc: dict[str, Any] = self.descriptor()
        if names:
            annotations = {"io.containerd.image.name": names[0]}
            last = names[0].rsplit("/", 1)[-1]
            if ":" in last and "@" not in last:
                annotations["org.opencontainers.image.ref.name"] = last.split(":", 1)[1]
            desc["annotations"] = annotations
        return json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                           "manifests": [desc]}, separators=(",", ":")).encode()

    def _docker_manifest(self, names: Sequence[str]) -> bytes:
        """``docker load`` reads one image: the first platform's, as a one-node export."""
        first = next(f for f, _ in self.combined.manifests.values() if not f.is_index)
        doc = first.document()

        def path(d: dict[str, Any]) -> str:
            return "blobs/sha256/" + str(d["digest"]).split(":", 1)[1]

        tags = [n.removeprefix("docker.io/library/").removeprefix("docker.io/")
                for n in names if "@" not in n]
        entry = {"Config": path(doc["config"]), "RepoTags": tags,
                 "Layers": [path(x) for x in doc.get("layers") or []]}
        return json.dumps([entry], separators=(",", ":")).encode()


def join_tars(parts: Iterable[tuple[str, Path]], dest: str) -> None:
    """Concatenate tarballs into ``dest`` (``-`` = stdout), each entry under its prefix."""
    with output_file(dest) as out, tarfile.open(fileobj=out, mode="w|",
                                            format=tarfile.PAX_FORMAT) as tf:
        for prefix, path in parts:
            if prefix:
                ti = tarfile.TarInfo(prefix)
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            with tarfile.open(path, mode="r|") as src:
                for member in src:
                    if prefix:
                        name = _relative(member.name)
                        if not name:
                            continue
                        member.name = f"{prefix}/{name}"
                        if member.islnk():
                            member.linkname = f"{prefix}/{_relative(member.linkname)}"
                    tf.addfile(member, src.extractfile(member) if member.isreg() else None)


def _relative(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    name = name.lstrip("/")
    return "" if name == "." else name


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode = len(data), 0o644
    tf.addfile(ti, io.BytesIO(data))


def _link(src: Path, dest: Path) -> None:
    """Blobs are immutable: share the file where possible instead of copying it."""
    if dest.exists():
        return
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)
