"""The registry client: resolve, pull and push images over the distribution HTTP API."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from buildkit_py.content.errors import ContentError
from buildkit_py.platforms import Platform, as_platform, best_match
from buildkit_py.registry import blob_sources
from buildkit_py.registry import mediatypes as mt
from buildkit_py.registry.auth import merge_scopes, scope_for
from buildkit_py.registry.blob_feed import BlobFeed
from buildkit_py.registry.credentials import CredentialsProvider, DockerConfigCredentials
from buildkit_py.registry.descriptor import (
    Descriptor,
    index_children,
    manifest_children,
    parse_json_object,
    sha256_digest,
)
from buildkit_py.registry.errors import (
    AccessDeniedError,
    AuthenticationError,
    DigestMismatchError,
    InvalidManifestError,
    NotFoundError,
    PlatformNotFoundError,
    RegistryError,
    RegistryUnavailableError,
    describe,
    login_hint,
    parse_error_body,
)
from buildkit_py.registry.hosts import Endpoint, HostsConfig, RegistryHosts
from buildkit_py.registry.lean_httpx import httpx
from buildkit_py.registry.reference import Reference, parse_reference, parse_repository
from buildkit_py.registry.streamed_upload import StreamedUpload, upload_location, with_digest
from buildkit_py.registry.transport import RETRY_STATUSES, RetryPolicy, Transport

if TYPE_CHECKING:
    from buildkit_py.content import ContentStore, Lease

log = logging.getLogger("buildkit_py.registry")

MiB = 1 << 20
MAX_MANIFEST_SIZE = 16 * MiB
MAX_INDEX_DEPTH = 4
PROGRESS_STEP = MiB // 2  # report transfer progress at most this often
STREAM_CHUNK = MiB  # the read size of a streamed upload body

T = TypeVar("T")


@dataclass(frozen=True)
class BlobProgress:
    """Progress of one blob; ``status`` is downloading/uploading/done/exists/mounted."""

    digest: str
    done: int
    total: int
    status: str


ProgressCallback = Callable[[BlobProgress], None]


class DescriptorLike(Protocol):
    """Any descriptor with the three essential fields (the exporter's works too)."""

    @property
    def media_type(self) -> str: ...

    @property
    def digest(self) -> str: ...

    @property
    def size(self) -> int: ...


@dataclass(frozen=True)
class PulledImage:
    """A pulled image: everything named here is in the content store."""

    reference: Reference
    root: Descriptor  # what the reference points at (index or manifest)
    manifest: Descriptor  # the platform's image manifest
    manifest_bytes: bytes
    config: Descriptor
    config_bytes: bytes
    layers: tuple[Descriptor, ...]


def as_reference(ref: str | Reference) -> Reference:
    return ref if isinstance(ref, Reference) else parse_reference(ref)


class _TransientError(Exception):
    """A non-idempotent upload request failed in a way worth restarting the upload for."""


class RegistryClient:
    """Talks to registries; thread-safe, one instance per process is enough.

    ``hosts`` maps a registry host to its :class:`RegistryHostConfig` (or a dict of the same
    keys); ``credentials`` defaults to docker's ``config.json``. Blobs are transferred
    ``max_workers`` at a time, each in one streamed PUT; with ``monolithic_max`` set,
    blobs larger than that go in ``chunk_size`` PATCH requests instead (for registries
    that limit a request's size).
    """

    def __init__(
        self,
        hosts: HostsConfig | RegistryHosts | None = None,
        credentials: CredentialsProvider | None = None,
        *,
        max_workers: int = 8,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        chunk_size: int = 8 * MiB,
        monolithic_max: int | None = None,
    ) -> None:
        self.hosts = hosts if isinstance(hosts, RegistryHosts) else RegistryHosts(hosts)
        self.max_workers = max(1, max_workers)
        self.chunk_size = chunk_size
        self.monolithic_max = monolithic_max
        self._transport = Transport(
            self.hosts,
            credentials if credentials is not None else DockerConfigCredentials(),
            retry=retry,
            timeout=timeout,
            max_connections=max(16, 2 * self.max_workers),
        )
        self.retry = self._transport.retry

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # resolving -----------------------------------------------------------------------

    def resolve(
        self, ref: str | Reference, platform: Platform | str | None = None, *,
        store: ContentStore | None = None,
    ) -> tuple[Descriptor, bytes]:
        """Fetch what ``ref`` points at: ``(descriptor, manifest bytes)``.

        Without ``platform`` an index is returned as is; with one, the matching platform
        manifest is fetched from the index and returned (its descriptor carries the platform).

        With ``store``, as BuildKit resolves: a HEAD names the digest, manifests the store
        holds are read from it and those fetched are kept in it, so resolving a tag again
        costs one request however many indexes lie under it.
        """
        r = as_reference(ref)
        endpoints = self.hosts.pull_endpoints(r.domain)
        if store is None:
            index, (desc, body) = self._first_working(
                endpoints, lambda ep: self._get_manifest(ep, r, r.object)
            )
        else:
            index, desc, body = self._resolve_stored(endpoints, r, store)
        if platform is not None:
            want = as_platform(platform)
            desc, body = self._descend(endpoints[index:], r, desc, body, want, store, None)
        return desc, body

    def _resolve_stored(self, endpoints: Sequence[Endpoint], r: Reference,
                        store: ContentStore) -> tuple[int, Descriptor, bytes]:
        """(endpoint index, descriptor, bytes) of ``r``: a HEAD, then the stored bytes of
        that digest, else a GET by digest whose bytes are stored."""
        index, head = self._first_working(endpoints, partial(self._head_manifest, r=r))
        stored = _from_store(store, head.digest, head.media_type, str(r))
        if stored is not None:
            head, body = stored
        else:
            index, (got, body) = self._first_working(
                endpoints[index:], partial(self._get_manifest, r=r, obj=head.digest))
            head = Descriptor(head.media_type or got.media_type, got.digest, got.size)
            _store_bytes(store, head, body, None)
        return index, head, body

    def _head_manifest(self, ep: Endpoint, r: Reference) -> Descriptor:
        """What ``r`` names, by a HEAD (by a GET when the registry omits the digest or
        the type: then the body is stored only by the caller)."""
        resp = self._transport.request(
            ep, "HEAD", _repo_path(ep, r, f"manifests/{r.object}"),
            scopes=self._scopes(ep, r), headers={"Accept": mt.MANIFEST_ACCEPT},
        )
        with closing(resp):
            self._check(resp, r, str(r), "pull")
            digest = resp.headers.get("docker-content-digest", "")
            media_type = _base_type(resp.headers.get("content-type", ""))
            length = resp.headers.get("content-length", "")
        if r.digest and digest and digest != r.digest:
            raise DigestMismatchError(f"{r}: registry reports digest {digest} for {r.digest}")
        if (digest.startswith("sha256:") and length.isdigit()
                and (mt.is_index(media_type) or mt.is_manifest(media_type))):
            return Descriptor(media_type, digest, int(length))
        return self._get_manifest(ep, r, r.object)[0]

    def resolve_digest(self, ref: str | Reference) -> Descriptor:
        """What ``ref`` points at, by a HEAD request (falls back to GET if the registry
        omits the digest)."""
        r = as_reference(ref)
        endpoints = self.hosts.pull_endpoints(r.domain)
        return self._first_working(endpoints, partial(self._head_manifest, r=r))[1]

    def fetch_blob(self, ref: str | Reference, desc: DescriptorLike) -> bytes:
        """Fetch a small blob (a config) into memory, verified against ``desc``."""
        r = as_reference(ref)
        endpoints = self.hosts.pull_endpoints(r.domain)

        def get(ep: Endpoint) -> bytes:
            resp = self._transport.request(
                ep, "GET", _repo_path(ep, r, f"blobs/{desc.digest}"), scopes=self._scopes(ep, r),
                stream=True,
            )
            with closing(resp):
                self._check(resp, r, f"blob {desc.digest} of {r.name}", "pull")
                buf = bytearray()
                for chunk in resp.iter_bytes():
                    buf += chunk
                    if len(buf) > desc.size:
                        break
            data = bytes(buf)
            _verify(r, desc, len(data), sha256_digest(data))
            return data

        return self._first_working(endpoints, lambda ep: self._retrying(
            ep, f"download of blob {desc.digest}", partial(get, ep)))[1]

    def fetch_blobs(
        self,
        ref: str | Reference,
        descs: Sequence[DescriptorLike],
        store: ContentStore,
        *,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Download ``descs`` of ``ref``'s repository into ``store`` (verified, in
        parallel); blobs the store has are not fetched."""
        r = as_reference(ref)
        endpoints = self.hosts.pull_endpoints(r.domain)
        unique = {d.digest: Descriptor(d.media_type, d.digest, d.size) for d in descs}
        self._run_all([
            partial(self._download, endpoints, r, d, store, progress, None)
            for d in unique.values()
        ])

    # pulling -------------------------------------------------------------------------

    def pull(
        self,
        ref: str | Reference,
        store: ContentStore,
        platform: Platform | str | None = None,
        *,
        progress: ProgressCallback | None = None,
        lease: Lease | None = None,
        feeds: Mapping[str, BlobFeed] | None = None,
    ) -> PulledImage:
        """Pull the image for ``platform`` (default: this machine's) into ``store``.

        Manifests, config and layers are verified against their digests and sizes while
        they stream to disk; a blob that does not match is discarded and raises
        :class:`DigestMismatchError`. Blobs already in the store are not fetched.
        ``feeds`` (by blob digest) get those blobs' bytes as they download
        (:mod:`blob_feed`); each is ended whatever happens.
        """
        r = as_reference(ref)
        want = as_platform(platform)
        endpoints = self.hosts.pull_endpoints(r.domain)
        stored = None if r.digest is None else _from_store(store, r.digest, "", str(r))
        if stored is not None:  # resolved a moment ago
            index, (root, root_bytes) = 0, stored
        else:
            index, root, root_bytes = self._resolve_stored(endpoints, r, store)
        # Blobs come from where the manifest came from, then from later fallbacks.
        usable = endpoints[index:]
        _store_bytes(store, root, root_bytes, lease)
        manifest, body = self._descend(usable, r, root, root_bytes, want, store, lease)
        if not mt.is_manifest(manifest.media_type):
            raise InvalidManifestError(
                f"{r}: cannot pull content of type {manifest.media_type!r} as an image"
            )
        config, layers = manifest_children(parse_json_object(body, f"manifest of {r}"), str(r))
        blobs = list({d.digest: d for d in (config, *layers)}.values())
        self._run_all([
            partial(self._download, usable, r, d, store, progress, lease,
                    (feeds or {}).get(d.digest)) for d in blobs
        ])
        blob_sources.record(store, r.domain, r.path, [d.digest for d in blobs])
        return PulledImage(
            reference=r,
            root=root,
            manifest=manifest,
            manifest_bytes=body,
            config=config,
            config_bytes=store.read(config.digest),
            layers=tuple(layers),
        )

    def _descend(
        self,
        endpoints: Sequence[Endpoint],
        r: Reference,
        desc: Descriptor,
        body: bytes,
        want: Platform,
        store: ContentStore | None,
        lease: Lease | None,
    ) -> tuple[Descriptor, bytes]:
        """Follow indexes down to the manifest for ``want``."""
        depth = 0
        while mt.is_index(desc.media_type):
            depth += 1
            if depth > MAX_INDEX_DEPTH:
                raise InvalidManifestError(f"{r}: indexes nested too deeply")
            children = index_children(parse_json_object(body, f"index of {r}"), str(r))
            pick = best_match(want, (c.platform for c in children))
            if pick is None:
                available = sorted({
                    str(c.platform) for c in children
                    if c.platform is not None and c.platform.os != "unknown"
                })
                raise PlatformNotFoundError(
                    f"{r}: no image for platform {want} (available: "
                    f"{', '.join(available) or 'none'})",
                    hint="choose one of the available platforms with --platform",
                )
            child = children[pick]
            stored = (None if store is None else
                      _from_store(store, child.digest, child.media_type,
                                  f"manifest {child.digest}"))
            if stored is not None:
                fetched, body = stored
            else:
                _, (fetched, body) = self._first_working(
                    endpoints, partial(self._get_manifest, r=r, obj=child.digest)
                )
            if fetched.size != child.size:
                raise DigestMismatchError(
                    f"manifest {child.digest} of {r.name}: size {fetched.size} "
                    f"!= {child.size} in the index"
                )
            desc = Descriptor(
                child.media_type or fetched.media_type, child.digest, child.size,
                child.platform, child.annotations, child.urls, child.artifact_type,
            )
            if store is not None:
                _store_bytes(store, desc, body, lease)
        return desc, body

    def _get_manifest(self, ep: Endpoint, r: Reference, obj: str) -> tuple[Descriptor, bytes]:
        return self._retrying(ep, f"download of manifest {obj} of {r.name}",
                              partial(self._get_manifest_once, ep, r, obj))

    def _retrying(self, ep: Endpoint, what: str, fn: Callable[[], T]) -> T:
        """``fn`` reads a response body into memory: a connection dropped midway is
        retried with backoff, as a blob download is."""
        attempt = 0
        while True:
            try:
                return fn()
            except httpx.TransportError as err:
                attempt += 1
                if attempt >= self.retry.attempts:
                    raise RegistryUnavailableError(
                        f"{what} from {ep.host} kept failing: {err}") from None
                self._transport.sleep(self.retry.delay(attempt - 1))

    def _get_manifest_once(self, ep: Endpoint, r: Reference, obj: str
                           ) -> tuple[Descriptor, bytes]:
        resp = self._transport.request(
            ep, "GET", _repo_path(ep, r, f"manifests/{obj}"), scopes=self._scopes(ep, r),
            headers={"Accept": mt.MANIFEST_ACCEPT}, stream=True,
        )
        subject = str(r) if obj == r.object else f"manifest {obj} of {r.name}"
        with closing(resp):
            self._check(resp, r, subject, "pull")
            buf = bytearray()
            for chunk in resp.iter_bytes():
                buf += chunk
                if len(buf) > MAX_MANIFEST_SIZE:
                    raise InvalidManifestError(f"{subject}: manifest larger than 16 MiB")
        body = bytes(buf)
        digest = sha256_digest(body)
        expected = obj if ":" in obj else resp.headers.get("docker-content-digest", "")
        if expected.startswith("sha256:") and expected != digest:
            raise DigestMismatchError(
                f"{subject}: manifest content hashes to {digest}, not {expected}",
                hint="the registry or a proxy served bad data",
            )
        kind = _manifest_type(resp.headers.get("content-type", ""), body, subject)
        return Descriptor(kind, digest, len(body)), body

    def _download(
        self,
        endpoints: Sequence[Endpoint],
        r: Reference,
        desc: Descriptor,
        store: ContentStore,
        progress: ProgressCallback | None,
        lease: Lease | None,
        feed: BlobFeed | None = None,
    ) -> None:
        if store.has(desc.digest):
            if feed is not None:
                feed.abandon(stored=True)
            if lease is not None:
                lease.add(desc.digest)
            if progress is not None:
                progress(BlobProgress(desc.digest, desc.size, desc.size, "exists"))
            return
        try:
            if not desc.digest.startswith("sha256:"):
                raise InvalidManifestError(
                    f"{r}: unsupported digest algorithm in {desc.digest}")
            self._first_working(
                endpoints,
                lambda ep: self._download_from(ep, r, desc, store, progress, lease, feed))
        except BaseException:
            if feed is not None:
                feed.failed()
            raise
        if feed is not None:
            feed.complete()

    def _download_from(
        self,
        ep: Endpoint,
        r: Reference,
        desc: Descriptor,
        store: ContentStore,
        progress: ProgressCallback | None,
        lease: Lease | None,
        feed: BlobFeed | None = None,
    ) -> None:
        path = _repo_path(ep, r, f"blobs/{desc.digest}")
        attempt = 0
        while True:
            if feed is not None and feed.started:
                feed.abandon()  # a retry, or another endpoint: the bytes start over
            # identity: the blob's digest is over its bytes as stored, never re-encoded.
            resp = self._transport.request(
                ep, "GET", path, scopes=self._scopes(ep, r),
                headers={"Accept-Encoding": "identity"}, stream=True,
            )
            try:
                with closing(resp):
                    self._check(resp, r, f"blob {desc.digest} of {r.name}", "pull")
                    self._stream_to_store(r, desc, resp, store, progress, lease, feed)
                return
            except httpx.TransportError as err:  # dropped mid-stream: start over
                attempt += 1
                if attempt >= self.retry.attempts:
                    raise RegistryUnavailableError(
                        f"download of blob {desc.digest} from {ep.host} kept failing: {err}"
                    ) from None
                self._transport.sleep(self.retry.delay(attempt - 1))

    def _stream_to_store(
        self,
        r: Reference,
        desc: Descriptor,
        resp: httpx.Response,
        store: ContentStore,
        progress: ProgressCallback | None,
        lease: Lease | None,
        feed: BlobFeed | None = None,
    ) -> None:
        done = reported = 0
        with store.writer(desc.digest, desc.size, lease=lease) as writer:
            if feed is not None:
                feed.writing(writer.path)
            for chunk in resp.iter_bytes():
                if done + len(chunk) > desc.size:
                    _verify(r, desc, done + len(chunk), None)
                writer.write(chunk)
                if feed is not None:
                    writer.flush()  # the feed's reader reads the file
                    feed.data(chunk)
                done += len(chunk)
                if progress is not None and done - reported >= PROGRESS_STEP:
                    reported = done
                    progress(BlobProgress(desc.digest, done, desc.size, "downloading"))
            # Raising inside the block discards the ingest: nothing is stored.
            _verify(r, desc, done, writer.digest)
        if progress is not None:
            progress(BlobProgress(desc.digest, done, desc.size, "done"))

    # pushing -------------------------------------------------------------------------

    def push(
        self,
        ref: str | Reference,
        store: ContentStore,
        root: DescriptorLike,
        *,
        tags: Sequence[str] = (),
        mount_from: Mapping[str, str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> Descriptor:
        """Push the image (manifest or index) ``root`` and everything it references.

        Order: layers and configs (in parallel), the platform manifests by digest (in
        parallel), then ``root`` under ``ref``'s tag and every extra tag in ``tags`` (by
        digest when ``ref`` has no tag). ``mount_from`` maps a blob digest to another
        repository of the same registry that already holds it, to mount it instead of
        uploading. Blobs the registry has are skipped after a HEAD.
        """
        r = as_reference(ref)
        if r.digest and r.digest != root.digest:
            raise RegistryError(f"cannot push {root.digest} as {r}: the digest differs")
        ep = self.hosts.push_endpoint(r.domain)
        plan = _PushPlan.build(store, root, r)
        mounts: dict[str, str] = {}
        for digest, source in (mount_from or {}).items():
            src = parse_repository(source, domain=r.domain)
            if src.domain == r.domain and src.path != r.path:
                mounts[digest] = src.path
        # blobs this store has seen in another repository of the registry: mounted too
        mounts.update(blob_sources.mount_sources(
            store, r.domain, r.path, [d for d in plan.blobs if d not in mounts]))
        scopes = self._scopes(ep, r, push=True, mount_sources=set(mounts.values()))
        # Every blob at once (a manifest may only name blobs the registry has, so they all
        # precede the manifests), then the platform manifests at once, then the root.
        self._run_all([
            partial(self._push_blob, ep, r, d, store, scopes, mounts.get(d.digest), progress)
            for d in plan.blobs.values()
        ])
        blob_sources.record(store, r.domain, r.path, plan.blobs)
        self._run_all([
            partial(self._push_manifest, ep, r, desc, body, scopes)
            for desc, body in plan.manifests
        ])
        targets = [t for t in (r.tag, *tags) if t] or [root.digest]
        for target in dict.fromkeys(targets):
            if target != root.digest:
                r.with_tag(target)  # validates the tag
            self._put_manifest(ep, r, target, plan.root_type, plan.root_bytes, scopes)
        return Descriptor(plan.root_type, root.digest, root.size)

    def push_blobs(
        self,
        ref: str | Reference,
        store: ContentStore,
        blobs: Sequence[DescriptorLike],
        manifest_type: str,
        manifest: bytes,
        *,
        progress: ProgressCallback | None = None,
    ) -> Descriptor:
        """Push ``blobs`` (in parallel; those the registry has are skipped), then
        ``manifest`` under ``ref``'s tag: for content whose manifest is not an image's
        (a cache index lists blobs that are not manifests)."""
        r = as_reference(ref)
        ep = self.hosts.push_endpoint(r.domain)
        scopes = self._scopes(ep, r, push=True)
        unique = list({d.digest: d for d in blobs}.values())
        self._run_all([
            partial(self._push_blob, ep, r, d, store, scopes, None, progress) for d in unique
        ])
        digest = sha256_digest(manifest)
        self._put_manifest(ep, r, r.tag or digest, manifest_type, manifest, scopes)
        return Descriptor(manifest_type, digest, len(manifest))

    def start_streamed_upload(self, ref: str | Reference) -> StreamedUpload | None:
        """An upload to ``ref``'s repository fed while its blob is made (see
        :mod:`streamed_upload`); None when no push endpoint can be named. The session
        starts in the upload's own thread: a registry that refuses it only fails it."""
        r = as_reference(ref)
        try:
            ep = self.hosts.push_endpoint(r.domain)
        except RegistryError as err:
            log.debug("no streamed upload to %s: %s", r, err)
            return None
        return StreamedUpload(self._transport, ep, self._scopes(ep, r, push=True),
                              _repo_path(ep, r, "blobs/uploads/"), str(r))

    def _exists(self, ep: Endpoint, r: Reference, suffix: str, scopes: tuple[str, ...]) -> bool:
        resp = self._transport.request(
            ep, "HEAD", _repo_path(ep, r, suffix), scopes=scopes,
            headers={"Accept": mt.MANIFEST_ACCEPT} if suffix.startswith("manifests/") else None,
        )
        with closing(resp):
            if resp.status_code == 404:
                return False
            self._check(resp, r, str(r), "push")
            return True

    def _push_blob(
        self,
        ep: Endpoint,
        r: Reference,
        desc: DescriptorLike,
        store: ContentStore,
        scopes: tuple[str, ...],
        mount_source: str | None,
        progress: ProgressCallback | None,
    ) -> str:
        if self._exists(ep, r, f"blobs/{desc.digest}", scopes):
            if progress is not None:
                progress(BlobProgress(desc.digest, desc.size, desc.size, "exists"))
            return "exists"
        uploads = _repo_path(ep, r, "blobs/uploads/")
        attempt = 0
        while True:
            location: str | None = None
            try:
                if mount_source is not None:
                    resp = self._transport.request(
                        ep, "POST", f"{uploads}?mount={desc.digest}&from={mount_source}",
                        scopes=scopes, content=b"",
                    )
                    if resp.status_code == 201:
                        resp.close()
                        if progress is not None:
                            progress(BlobProgress(desc.digest, desc.size, desc.size, "mounted"))
                        return "mounted"
                else:
                    resp = self._transport.request(ep, "POST", uploads, scopes=scopes,
                                                   content=b"")
                with closing(resp):
                    self._check_upload(resp, r, desc, 202)
                    location = upload_location(resp)
                    min_chunk = resp.headers.get("oci-chunk-min-length", "")
                if not store.has(desc.digest):
                    self._cancel_upload(ep, location, scopes)
                    raise RegistryError(
                        f"cannot push {r}: blob {desc.digest} is neither in the local content "
                        f"store nor in the registry"
                    )
                try:
                    self._upload(ep, r, desc, store, location, scopes, progress,
                                 int(min_chunk) if min_chunk.isdigit() else 0)
                except ContentError:
                    # a corrupted local blob: the registry must not keep any of it
                    self._cancel_upload(ep, location, scopes)
                    raise
                return "pushed"
            except (_TransientError, RegistryUnavailableError) as err:
                if location is not None:
                    self._cancel_upload(ep, location, scopes)
                attempt += 1
                if attempt >= self.retry.attempts:
                    raise RegistryUnavailableError(
                        f"upload of blob {desc.digest} to {r.name} kept failing: {err}",
                        hint="check the registry's health and retry",
                    ) from None
                self._transport.sleep(self.retry.delay(attempt - 1))

    def _upload(
        self,
        ep: Endpoint,
        r: Reference,
        desc: DescriptorLike,
        store: ContentStore,
        location: str,
        scopes: tuple[str, ...],
        progress: ProgressCallback | None,
        min_chunk: int,
    ) -> None:
        octets = {"Content-Type": "application/octet-stream"}
        if self.monolithic_max is None or desc.size <= self.monolithic_max:
            self._upload_whole(ep, r, desc, store, location, scopes, progress)
            return
        # Hashed as it is read: the read that reaches the end raises CorruptContentError
        # before the last bytes are sent, so a corrupted blob is never committed.
        with store.open_verified(desc.digest) as f:
            chunk = max(self.chunk_size, min_chunk)
            offset = 0
            while offset < desc.size:
                data = f.read(chunk)
                if not data:
                    raise RegistryError(f"blob {desc.digest} in the content store is truncated")
                end = offset + len(data) - 1
                resp = self._transport.request(
                    ep, "PATCH", location, scopes=scopes, content=data, retry=False,
                    headers={**octets, "Content-Range": f"{offset}-{end}"},
                )
                with closing(resp):
                    self._check_upload(resp, r, desc, 202)
                    location = upload_location(resp)
                offset = end + 1
                if progress is not None:
                    progress(BlobProgress(desc.digest, offset, desc.size, "uploading"))
        resp = self._transport.request(
            ep, "PUT", with_digest(location, desc.digest), scopes=scopes, content=b"",
            headers=octets, retry=False,
        )
        with closing(resp):
            self._check_upload(resp, r, desc, 201)
        if progress is not None:
            progress(BlobProgress(desc.digest, desc.size, desc.size, "done"))

    def _upload_whole(
        self,
        ep: Endpoint,
        r: Reference,
        desc: DescriptorLike,
        store: ContentStore,
        location: str,
        scopes: tuple[str, ...],
        progress: ProgressCallback | None,
    ) -> None:
        """One PUT whose body streams from the store, as containerd pushes: no round trip
        per chunk, no chunk in memory. The body is hashed as it is read, and the read that
        reaches the end raises CorruptContentError before the last bytes go out, so the
        registry never commits a corrupted blob."""

        def body() -> Iterator[bytes]:
            sent = reported = 0
            with store.open_verified(desc.digest) as f:
                while chunk := f.read(STREAM_CHUNK):
                    yield chunk
                    sent += len(chunk)
                    if progress is not None and sent - reported >= PROGRESS_STEP:
                        reported = sent
                        progress(BlobProgress(desc.digest, sent, desc.size, "uploading"))

        resp = self._transport.request(
            ep, "PUT", with_digest(location, desc.digest), scopes=scopes, content=body,
            headers={"Content-Type": "application/octet-stream",
                     "Content-Length": str(desc.size)},
            retry=False,
        )
        with closing(resp):
            self._check_upload(resp, r, desc, 201)
        if progress is not None:
            progress(BlobProgress(desc.digest, desc.size, desc.size, "done"))

    def _check_upload(
        self, resp: httpx.Response, r: Reference, desc: DescriptorLike, expected: int
    ) -> None:
        if resp.status_code in RETRY_STATUSES or resp.status_code == 416:
            resp.read()
            raise _TransientError(f"HTTP {resp.status_code} from {resp.request.method}")
        if resp.status_code != expected and not resp.is_success:
            self._check(resp, r, f"upload of blob {desc.digest} to {r.name}", "push")
        if resp.status_code != expected:
            raise RegistryError(
                f"upload of blob {desc.digest} to {r.name}: unexpected HTTP {resp.status_code} "
                f"(wanted {expected})"
            )

    def _cancel_upload(self, ep: Endpoint, location: str, scopes: tuple[str, ...]) -> None:
        try:
            self._transport.request(ep, "DELETE", location, scopes=scopes, retry=False).close()
        except RegistryError:
            pass  # best effort: the registry expires abandoned uploads anyway

    def _push_manifest(self, ep: Endpoint, r: Reference, desc: DescriptorLike, body: bytes,
                       scopes: tuple[str, ...]) -> None:
        """A manifest an index names, by digest, unless the registry has it."""
        if not self._exists(ep, r, f"manifests/{desc.digest}", scopes):
            self._put_manifest(ep, r, desc.digest, desc.media_type, body, scopes)

    def _put_manifest(
        self,
        ep: Endpoint,
        r: Reference,
        target: str,
        media_type: str,
        body: bytes,
        scopes: tuple[str, ...],
    ) -> None:
        resp = self._transport.request(
            ep, "PUT", _repo_path(ep, r, f"manifests/{target}"), scopes=scopes,
            headers={"Content-Type": media_type}, content=body,
        )
        with closing(resp):
            subject = f"{r.name}:{target}" if ":" not in target else f"{r.name}@{target}"
            self._check(resp, r, subject, "push")

    # shared helpers -------------------------------------------------------------------

    def _scopes(
        self,
        ep: Endpoint,
        r: Reference,
        *,
        push: bool = False,
        mount_sources: set[str] | None = None,
    ) -> tuple[str, ...]:
        actions = ("pull", "push") if push else ("pull",)
        scopes = [scope_for(ep.repo_path(r.path), actions)]
        scopes.extend(scope_for(ep.repo_path(s), ("pull",)) for s in mount_sources or ())
        return merge_scopes(scopes)

    def _first_working(
        self, endpoints: Sequence[Endpoint], fn: Callable[[Endpoint], T]
    ) -> tuple[int, T]:
        """Call ``fn`` on each endpoint in turn until one succeeds; mirrors may fail."""
        for i, ep in enumerate(endpoints):
            try:
                return i, fn(ep)
            except RegistryError as err:
                if i == len(endpoints) - 1:
                    raise
                log.info("mirror %s failed (%s); trying the next endpoint", ep.host, err.message)
        raise AssertionError("no endpoints")  # pull_endpoints always ends with the registry

    def _run_all(self, tasks: list[Callable[[], Any]]) -> None:
        """Run ``tasks`` on up to ``max_workers`` threads; re-raise the first failure."""
        if len(tasks) <= 1 or self.max_workers == 1:
            for task in tasks:
                task()
            return
        with ThreadPoolExecutor(
            max_workers=min(self.max_workers, len(tasks)), thread_name_prefix="registry"
        ) as pool:
            futures = [pool.submit(task) for task in tasks]
            wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                if future.done() and future.exception() is not None:
                    for other in futures:
                        other.cancel()
                    raise future.exception()  # type: ignore[misc]
            for future in futures:
                future.result()

    def _check(self, resp: httpx.Response, r: Reference, subject: str, action: str) -> None:
        if resp.is_success:
            return
        logged_in = self._transport.authorizer.credentials(resp.url.netloc.decode()) is not None
        raise error_for_response(resp, r, subject, action, logged_in=logged_in)


class _PushPlan:
    """What to push for a root descriptor, read from the content store."""

    def __init__(self) -> None:
        self.blobs: dict[str, DescriptorLike] = {}  # layers and configs, each once
        self.manifests: list[tuple[DescriptorLike, bytes]] = []
        self.root_type = ""
        self.root_bytes = b""

    @classmethod
    def build(cls, store: ContentStore, root: DescriptorLike, r: Reference) -> _PushPlan:
        plan = cls()
        plan.root_type, plan.root_bytes = plan._visit(store, root, r, 0)
        return plan

    def _visit(
        self, store: ContentStore, desc: DescriptorLike, r: Reference, depth: int
    ) -> tuple[str, bytes]:
        if depth > MAX_INDEX_DEPTH:
            raise InvalidManifestError(f"cannot push {r}: indexes nested too deeply")
        if not store.has(desc.digest):
            raise RegistryError(f"cannot push {r}: manifest {desc.digest} is not in the store")
        body = store.read_verified(desc.digest)
        doc = parse_json_object(body, f"manifest {desc.digest}")
        media_type = desc.media_type or str(doc.get("mediaType", ""))
        if mt.is_index(media_type):
            for child in index_children(doc, f"index {desc.digest}"):
                child_type, child_body = self._visit(store, child, r, depth + 1)
                self.manifests.append((_with_type(child, child_type), child_body))
        else:
            config, layers = manifest_children(doc, f"manifest {desc.digest}")
            for blob in (*layers, config):
                self.blobs.setdefault(blob.digest, blob)
        if not media_type:
            raise InvalidManifestError(f"cannot push {r}: {desc.digest} has no media type")
        return media_type, body


def _with_type(desc: Descriptor, media_type: str) -> Descriptor:
    if desc.media_type == media_type:
        return desc
    return Descriptor(media_type, desc.digest, desc.size, desc.platform, desc.annotations)


def _from_store(store: ContentStore, digest: str, declared_type: str, subject: str
                ) -> tuple[Descriptor, bytes] | None:
    """Manifest or index ``digest`` (served as ``declared_type``) if the store holds it
    intact: its descriptor and bytes."""
    try:
        body = store.read_verified(digest)
    except ContentError:
        return None  # absent, or corrupted: fetched again (the fetch replaces nothing)
    if len(body) > MAX_MANIFEST_SIZE:
        return None
    return Descriptor(_manifest_type(declared_type, body, subject), digest, len(body)), body


def _store_bytes(
    store: ContentStore, desc: Descriptor, data: bytes, lease: Lease | None
) -> None:
    if store.has(desc.digest):
        if lease is not None:
            lease.add(desc.digest)
        return
    store.write(data, desc.digest, lease=lease)


def _verify(r: Reference, desc: DescriptorLike, size: int, digest: str | None) -> None:
    if size != desc.size:
        raise DigestMismatchError(
            f"blob {desc.digest} of {r.name} is corrupted: got "
            f"{'more than ' if digest is None else ''}{size} bytes, expected {desc.size}; "
            f"nothing was stored",
            hint="the registry or a proxy served bad data; retry, and tell the registry's "
            "operator if it persists",
        )
    if digest is not None and digest != desc.digest:
        raise DigestMismatchError(
            f"blob {desc.digest} of {r.name} is corrupted: its content hashes to {digest}; "
            f"nothing was stored",
            hint="the registry or a proxy served bad data; retry, and tell the registry's "
            "operator if it persists",
        )


def _repo_path(ep: Endpoint, r: Reference, suffix: str) -> str:
    return f"/v2/{ep.repo_path(r.path)}/{suffix}"


def _base_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip()


def _manifest_type(content_type: str, body: bytes, subject: str) -> str:
    """The media type of manifest ``body`` served (or stored) as ``content_type``."""
    doc = parse_json_object(body, subject)
    declared = doc.get("mediaType")
    header = _base_type(content_type)
    if doc.get("schemaVersion") == 1 or header in mt.SCHEMA1_TYPES:
        raise InvalidManifestError(
            f"{subject}: Docker schema 1 manifests are not supported",
            hint="re-push the image with a current docker or buildkit",
        )
    if isinstance(declared, str) and declared:
        return declared
    if header in mt.INDEX_TYPES or header in mt.MANIFEST_TYPES:
        return header
    # OCI allows omitting mediaType in the body: tell index from manifest by shape.
    return mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST


def error_for_response(
    resp: httpx.Response, r: Reference, subject: str, action: str, *, logged_in: bool
) -> RegistryError:
    """Turn a failed registry response into a UserError naming ``subject``."""
    try:
        body = resp.read()
    except httpx.HTTPError:
        body = b""
    details = parse_error_body(body)
    codes = {d.code for d in details}
    text = describe(details)
    status = resp.status_code
    if status == 401 or "UNAUTHORIZED" in codes:
        if logged_in:
            why = f"the registry rejected the credentials, or they grant no {action} access"
        else:
            why = "authentication required"
            if action == "pull":
                why += "; the repository does not exist or may require authorization"
        return AuthenticationError(
            f"unauthorized: {action} {subject}: {why}",
            hint=f"run `{login_hint(r.domain)}`",
        )
    if status == 403 or "DENIED" in codes:
        return AccessDeniedError(
            f"access denied: {action} {subject}" + (f": {text}" if text else ""),
            hint=f"check that your account may {action} this repository "
            f"(`{login_hint(r.domain)}`)",
        )
    if status == 404 or codes & {"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"}:
        return NotFoundError(
            f"not found: {subject}",
            hint="check the name and tag; use `docker login` for private images",
        )
    if status == 429 or "TOOMANYREQUESTS" in codes:
        return RegistryError(
            f"too many requests to {resp.url.host} ({action} {subject})",
            hint="wait and retry, or log in for a higher rate limit",
        )
    if status >= 500:
        return RegistryUnavailableError(
            f"registry {resp.url.host} failed: HTTP {status} on {action} {subject}",
            hint="the registry is having trouble; retry later",
        )
    return RegistryError(
        f"{action} {subject} failed: HTTP {status}" + (f": {text}" if text else "")
    )
