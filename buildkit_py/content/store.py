"""A content-addressed blob store laid out like an OCI image layout.

``<root>/content/blobs/sha256/<hex>`` holds each blob exactly once (so an OCI
folder export can hardlink from it), ``ingest/`` holds in-flight writes, and a
sqlite sidecar keeps labels and leases. GC deletes every blob that is neither in
the caller's keep set nor held by a live lease.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from buildkit_py.content.digest import digest_bytes, validate_digest
from buildkit_py.content.errors import (
    ContentError,
    ContentNotFoundError,
    CorruptContentError,
    DigestMismatchError,
)
from buildkit_py.content.metadata import ContentMetadata
from buildkit_py.content.verify import VerifyingReader, hash_file
from buildkit_py.content.writer import ContentWriter

#: Label on a compressed layer blob naming the digest of its uncompressed tar.
LABEL_UNCOMPRESSED = "containerd.io/uncompressed"



@dataclass(frozen=True)
class ContentInfo:
    """What the store knows about one blob."""

    digest: str
    size: int
    created_at: float
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GCResult:
    removed: list[str]
    bytes_freed: int
    ingests_removed: int


class Lease:
    """Protects the digests added to it from GC while the lease lives."""

    def __init__(self, store: ContentStore, lease_id: str) -> None:
        self.id = lease_id
        self._store = store

    def add(self, digest: str) -> None:
        validate_digest(digest)
        self._store._meta.add_to_lease(self.id, digest)


class ContentStore:
    """Blobs by digest under ``<root>/content``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.content_dir = self.root / "content"
        self.blobs_dir = self.content_dir / "blobs" / "sha256"
        self.ingest_dir = self.content_dir / "ingest"
        self.blobs_dir.mkdir(parents=True, exist_ok=True)
        self.ingest_dir.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.content_dir / "gc.lock"
        self._meta = ContentMetadata(self.content_dir / "metadata.db")

    def close(self) -> None:
        self._meta.close()

    def __enter__(self) -> ContentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # reading ----------------------------------------------------------------

    def _blob(self, digest: str) -> Path:
        return self.blobs_dir / validate_digest(digest)

    def has(self, digest: str) -> bool:
        return self._blob(digest).is_file()

    def path(self, digest: str) -> Path:
        """The blob's file (read-only; hardlink or open it, never modify it)."""
        p = self._blob(digest)
        if not p.is_file():
            raise ContentNotFoundError(f"content {digest} not found")
        return p

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self._blob(digest), "rb")
        except FileNotFoundError:
            raise ContentNotFoundError(f"content {digest} not found") from None

    def read(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def info(self, digest: str) -> ContentInfo:
        try:
            st = self._blob(digest).stat()
        except FileNotFoundError:
            raise ContentNotFoundError(f"content {digest} not found") from None
        return ContentInfo(digest, st.st_size, st.st_mtime, self._meta.labels(digest))

    def labels(self, digest: str) -> dict[str, str]:
        return self._meta.labels(digest)

    def update_labels(self, digest: str, labels: Mapping[str, str | None]) -> None:
        """Set labels; a ``None`` value removes that label."""
        if not self.has(digest):
            raise ContentNotFoundError(f"content {digest} not found")
        self._meta.update_labels(digest, labels)

    def label_values(self, key: str, digests: Iterable[str]) -> dict[str, str]:
        """Label ``key`` of each of ``digests`` that has it (digest -> value)."""
        return self._meta.label_values(key, digests)

    def set_label_values(self, key: str, values: Mapping[str, str]) -> None:
        """Set label ``key`` on several stored blobs at once (digest -> value); digests
        the store does not hold are left out."""
        self._meta.set_label_values(key, {d: v for d, v in values.items() if self.has(d)})

    def open_verified(self, digest: str) -> VerifyingReader:
        """Open a blob for export: its digest is checked as it is read (see
        :class:`VerifyingReader`), so a corrupted blob never leaves the builder."""
        return VerifyingReader(self.open(digest), digest)

    def read_verified(self, digest: str) -> bytes:
        """The whole blob, checked against its digest (for manifests and configs)."""
        with self.open_verified(digest) as f:
            return f.read()

    def verify(self, digest: str) -> None:
        """Re-hash a stored blob; raise CorruptContentError if it was corrupted."""
        with self.open(digest) as f:
            actual = hash_file(f)
        if actual != digest:
            raise CorruptContentError(digest, actual)

    def walk(self) -> Iterator[ContentInfo]:
        with os.scandir(self.blobs_dir) as it:
            names = sorted(e.name for e in it if e.is_file(follow_symlinks=False))
        for name in names:
            digest = f"sha256:{name}"
            try:
                yield self.info(digest)
            except ContentError:
                continue

    # writing ----------------------------------------------------------------

    def write(
        self,
        data: bytes,
        expected: str | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        lease: Lease | None = None,
    ) -> str:
        """Store ``data``; returns its digest. Mismatch with ``expected`` stores nothing."""
        actual = digest_bytes(data)
        if expected is not None:
            validate_digest(expected)
            if actual != expected:
                raise DigestMismatchError(f"content digest {actual} != expected {expected}")
        # Rebuilds write the same configs and manifests again: nothing to do when present.
        with self._gc_lock(shared=True):
            if self.has(actual):
                self._after_commit(actual, labels, lease)
                return actual
        with self.writer(expected, len(data), labels=labels, lease=lease) as w:
            w.write(data)
        return w.digest

    @contextlib.contextmanager
    def writer(
        self,
        expected_digest: str | None = None,
        expected_size: int | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        lease: Lease | None = None,
    ) -> Iterator[ContentWriter]:
        """Stream a blob in; committed when the block exits normally, discarded on error."""
        if expected_digest is not None:
            validate_digest(expected_digest)

        def publish(tmp: Path, digest: str) -> None:
            self._publish(tmp, digest, labels, lease)

        w = ContentWriter(self.ingest_dir, expected_digest, expected_size, publish)
        try:
            yield w
            w.commit()
        except BaseException:
            w.abort()
            raise

    def _publish(
        self, tmp: Path, digest: str, labels: Mapping[str, str] | None, lease: Lease | None
    ) -> None:
        target = self._blob(digest)
        # Under the shared lock so a concurrent gc cannot drop the blob before
        # its lease reference exists.
        with self._gc_lock(shared=True):
            if target.exists():
                tmp.unlink(missing_ok=True)
            else:
                os.rename(tmp, target)
                dfd = os.open(self.blobs_dir, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
            self._after_commit(digest, labels, lease)

    def _after_commit(
        self, digest: str, labels: Mapping[str, str] | None, lease: Lease | None
    ) -> None:
        if lease is not None:
            lease.add(digest)
        if labels:
            self._meta.update_labels(digest, labels)

    def delete(self, digest: str) -> bool:
        """Remove a blob; returns whether it existed."""
        p = self._blob(digest)
        with self._gc_lock(shared=False):
            try:
                p.unlink()
            except FileNotFoundError:
                return False
        self._meta.forget([digest])
        return True

    # leases and GC ----------------------------------------------------------

    @contextlib.contextmanager
    def lease(
        self, lease_id: str | None = None, *, expires_in: float | None = 24 * 3600.0
    ) -> Iterator[Lease]:
        """A lease for the duration of the block. ``expires_in`` bounds how long a
        lease of a killed process keeps protecting its blobs."""
        lid = lease_id or f"lease-{uuid.uuid4().hex}"
        expires = None if expires_in is None else time.time() + expires_in
        self._meta.create_lease(lid, expires)
        try:
            yield Lease(self, lid)
        finally:
            self._meta.delete_lease(lid)

    def leases(self) -> list[str]:
        return self._meta.lease_ids()

    def gc(self, keep: Iterable[str]) -> GCResult:
        """Delete blobs outside ``keep`` and live leases, and abandoned ingest files."""
        with self._gc_lock(shared=False):
            protected = set(keep) | self._meta.leased_digests(time.time())
            removed: list[str] = []
            freed = 0
            with os.scandir(self.blobs_dir) as it:
                entries = list(it)
            for e in entries:
                digest = f"sha256:{e.name}"
                if digest in protected:
                    continue
                try:
                    size = e.stat(follow_symlinks=False).st_size
                    os.unlink(e.path)
                except FileNotFoundError:
                    continue
                removed.append(digest)
                freed += size
            ingests = self._remove_abandoned_ingests()
        if removed:
            self._meta.forget(removed)
        return GCResult(sorted(removed), freed, ingests)

    def _remove_abandoned_ingests(self) -> int:
        count = 0
        with os.scandir(self.ingest_dir) as it:
            entries = list(it)
        for e in entries:
            try:
                fd = os.open(e.path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                # A live writer holds an exclusive lock; a dead one does not.
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                os.unlink(e.path)
                count += 1
            except FileNotFoundError:
                pass
            finally:
                os.close(fd)
        return count

    @contextlib.contextmanager
    def _gc_lock(self, *, shared: bool) -> Iterator[None]:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
