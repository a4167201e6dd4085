"""Registry client (OCI distribution spec): references, resolve, pull, push, auth.

Public API (names are importable from ``buildkit_py.registry``; loaded lazily so that
importing e.g. ``registry.mediatypes`` does not pull in httpx)::

    ref = parse_reference("busybox")            # Reference(domain="docker.io",
    str(ref)                                    #   path="library/busybox", tag="latest")
    ref.familiar, ref.api_host                  # "busybox:latest", "registry-1.docker.io"

    client = RegistryClient(
        hosts={"myreg:5000": {"http": True}, "docker.io": {"mirrors": ["mirror:5000"]}},
        credentials=None,          # None: docker's config.json ($DOCKER_CONFIG); or
    )                              # StaticCredentials({...}) / any CredentialsProvider
    desc, manifest = client.resolve(ref, platform="linux/arm64")
    desc = client.resolve_digest(ref)                     # HEAD only
    config = client.fetch_blob(ref, config_descriptor)    # small blob, verified
    image = client.pull(ref, content_store, "linux/amd64", progress=cb, lease=lease)
    client.push(ref, content_store, root_descriptor, tags=("v1",),
                mount_from={layer_digest: "other/repo"}, progress=cb)

- ``RegistryClient(hosts, credentials, *, max_workers=8, retry=RetryPolicy(), timeout=60,
  chunk_size=8 MiB, monolithic_max=None)``; thread-safe; ``close()`` or use ``with``.
- ``resolve(ref, platform=None) -> (Descriptor, bytes)``: the manifest/index ``ref`` names;
  with ``platform``, an index is followed to that platform's manifest (containerd-style
  matching: exact variant preferred, then lower compatible ones).
- ``pull(ref, store, platform=None, *, progress=None, lease=None) -> PulledImage``: stores
  index, manifest, config and layers in a ``buildkit_py.content.ContentStore``; blobs are
  fetched in parallel and verified (digest and size) while streaming; a bad blob raises
  ``DigestMismatchError`` and is not stored. Mirrors are tried before the registry.
- ``push(ref, store, root, *, tags=(), mount_from=None, progress=None) -> Descriptor``:
  layers (HEAD first, skip existing; cross-repo mount; one PUT streaming the blob, or
  with ``monolithic_max`` set, chunked PATCH above it) and configs at once, then the
  manifests by digest at once, and ``root`` under each tag. Every blob read from
  ``store`` is checked against its digest as it is uploaded: a corrupted one raises
  ``content.CorruptContentError`` before its last bytes are sent, its upload is
  cancelled and no manifest is pushed.
- ``fetch_blobs(ref, descs, store, *, progress=None)``: just these blobs (verified, in
  parallel, skipping those the store has); ``push_blobs(ref, store, blobs, manifest_type,
  manifest, *, progress=None)``: blobs then a manifest whose children are not images' (a
  cache index lists layer blobs and a cache config).
- ``progress`` receives ``BlobProgress(digest, done, total, status)`` from worker threads;
  ``status`` is downloading/uploading/done/exists/mounted.
- Hosts: ``RegistryHostConfig(http=None, insecure=False, ca=(), mirrors=())`` per host;
  localhost/127.0.0.0/8/::1 use plain HTTP unless ``http=False``.
- Credentials: ``DockerConfigCredentials`` (credHelpers -> credsStore -> auths),
  ``StaticCredentials``, ``Credentials(username, password, identity_token, registry_token)``.
  Bearer tokens are fetched from the challenge's realm (GET with Basic credentials or
  anonymously; POST with a refresh token when an identity token is stored) and cached per
  (host, scopes) until expiry.
- Errors (all ``UserError``): ``NotFoundError``, ``AuthenticationError``,
  ``AccessDeniedError``, ``DigestMismatchError``, ``InvalidManifestError``,
  ``PlatformNotFoundError``, ``RegistryUnavailableError``, ``CredentialsError``, base
  ``RegistryError``; ``InvalidReferenceError`` (a ``UsageError``) for malformed references.
- Requests are retried with exponential backoff on 5xx, 429 and dropped connections.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from buildkit_py.lazy_exports import lazy_exports

_EXPORTS = {
    "BlobProgress": "client",
    "PulledImage": "client",
    "RegistryClient": "client",
    "Credentials": "credentials",
    "CredentialsProvider": "credentials",
    "DockerConfigCredentials": "credentials",
    "StaticCredentials": "credentials",
    "Descriptor": "descriptor",
    "AccessDeniedError": "errors",
    "AuthenticationError": "errors",
    "CredentialsError": "errors",
    "DigestMismatchError": "errors",
    "InvalidManifestError": "errors",
    "NotFoundError": "errors",
    "PlatformNotFoundError": "errors",
    "RegistryError": "errors",
    "RegistryUnavailableError": "errors",
    "RegistryHostConfig": "hosts",
    "Platform": "buildkit_py.platforms",
    "parse_platform": "buildkit_py.platforms",
    "InvalidReferenceError": "reference",
    "Reference": "reference",
    "parse_reference": "reference",
    "RetryPolicy": "transport",
}

__all__ = [
    "AccessDeniedError",
    "AuthenticationError",
    "BlobProgress",
    "Credentials",
    "CredentialsError",
    "CredentialsProvider",
    "Descriptor",
    "DigestMismatchError",
    "DockerConfigCredentials",
    "InvalidManifestError",
    "InvalidReferenceError",
    "NotFoundError",
    "Platform",
    "PlatformNotFoundError",
    "PulledImage",
    "Reference",
    "RegistryClient",
    "RegistryError",
    "RegistryHostConfig",
    "RegistryUnavailableError",
    "RetryPolicy",
    "StaticCredentials",
    "parse_platform",
    "parse_reference",
]

if TYPE_CHECKING:
    from buildkit_py.platforms import Platform, parse_platform
    from buildkit_py.registry.client import BlobProgress, PulledImage, RegistryClient
    from buildkit_py.registry.credentials import (
        Credentials,
        CredentialsProvider,
        DockerConfigCredentials,
        StaticCredentials,
    )
    from buildkit_py.registry.descriptor import Descriptor
    from buildkit_py.registry.errors import (
        AccessDeniedError,
        AuthenticationError,
        CredentialsError,
        DigestMismatchError,
        InvalidManifestError,
        NotFoundError,
        PlatformNotFoundError,
        RegistryError,
        RegistryUnavailableError,
    )
    from buildkit_py.registry.hosts import RegistryHostConfig
    from buildkit_py.registry.reference import InvalidReferenceError, Reference, parse_reference
    from buildkit_py.registry.transport import RetryPolicy


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
