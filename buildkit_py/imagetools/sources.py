"""Reading an image's manifests and blobs from a registry or from the local image store,
behind one small interface, verified by digest either way."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from buildkit_py.content.errors import ContentError
from buildkit_py.errors import UserError
from buildkit_py.registry import mediatypes as mt
from buildkit_py.registry.reference import Reference

if TYPE_CHECKING:
    from buildkit_py.content.images import ImageStore
    from buildkit_py.content.store import ContentStore
    from buildkit_py.registry.client import RegistryClient


@dataclass(frozen=True)
class Blob:
    """A descriptor's three essentials (what the registry client needs to fetch it)."""

    media_type: str
    digest: str
    size: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Blob:
        return cls(str(data.get("mediaType", "")), str(data["digest"]), int(data["size"]))


@dataclass(frozen=True)
class Fetched:
    """A manifest or index: its descriptor fields and exact bytes."""

    media_type: str
    digest: str
    body: bytes

    @property
    def size(self) -> int:
        return len(self.body)

    def document(self) -> dict[str, Any]:
        return parse_document(self.body, self.digest)

    @property
    def is_index(self) -> bool:
        return mt.is_index(self.media_type)


class ManifestSource(Protocol):
    """Where an image's content comes from."""

    ref: Reference

    def root(self) -> Fetched:
        """What the reference points at (an index or a manifest), unchanged."""
        ...

    def manifest(self, digest: str) -> Fetched:
        """A child manifest or index, by digest."""
        ...

    def blob(self, desc: Blob) -> bytes:
        """A small blob (a config), verified."""
        ...


def parse_document(body: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(f"{what} is not valid JSON: {err}") from None
    if not isinstance(doc, dict):
        raise UserError(f"{what} is not a JSON object")
    return doc


def media_type_of(body: bytes, declared: str, what: str) -> str:
    """The document's own mediaType, else the declared one, else guessed from its shape."""
    doc = parse_document(body, what)
    own = doc.get("mediaType")
    if isinstance(own, str) and own:
        return own
    if declared:
        return declared
    return mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST


class RegistrySource:
    """An image in a registry, read with the registry client (mirrors, auth, retries)."""

    def __init__(self, client: RegistryClient, ref: Reference) -> None:
        self.client = client
        self.ref = ref

    def root(self) -> Fetched:
        desc, body = self.client.resolve(self.ref)
        return Fetched(desc.media_type, desc.digest, body)

    def manifest(self, digest: str) -> Fetched:
        desc, body = self.client.resolve(self.ref.with_digest(digest))
        return Fetched(desc.media_type, desc.digest, body)

    def blob(self, desc: Blob) -> bytes:
        return self.client.fetch_blob(self.ref, desc)


class LocalSource:
    """An image of the builder's local image store (``--load``, ``bkpy image import``)."""

    def __init__(self, images: ImageStore, content: ContentStore, ref: Reference) -> None:
        self.images = images
        self.content = content
        self.ref = ref

    def root(self) -> Fetched:
        r = self.ref
        if r.digest:
            return self.manifest(r.digest)
        for name in dict.fromkeys((str(r), r.familiar, f"{r.name}:{r.tag or 'latest'}")):
            rec = self.images.get(name)
            if rec is not None:
                body = self._read(rec.digest, f"image {r.familiar}")
                return Fetched(media_type_of(body, rec.media_type, rec.digest), rec.digest, body)
        raise UserError(f"image {r.familiar} is not in the local image store",
                        hint="see `bkpy images`; drop --local to ask the registry")

    def manifest(self, digest: str) -> Fetched:
        body = self._read(digest, f"manifest {digest}")
        return Fetched(media_type_of(body, "", digest), digest, body)

    def blob(self, desc: Blob) -> bytes:
        data = self._read(desc.digest, f"blob {desc.digest}")
        if len(data) != desc.size:
            raise UserError(f"blob {desc.digest} in the local content store has "
                            f"{len(data)} bytes, expected {desc.size}")
        return data

    def _read(self, digest: str, what: str) -> bytes:
        try:
            data = self.content.read(digest)
        except ContentError:
            raise UserError(f"{what} of {self.ref.familiar} is missing from the local content "
                            "store", hint="re-import the image or build it again with --load"
                            ) from None
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise UserError(f"{what} of {self.ref.familiar} is corrupted in the local content "
                            f"store (hashes to {actual})")
        return data
