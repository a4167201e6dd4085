"""Content store: blobs addressed by digest, labels, leases and GC."""

from buildkit_py.content.digest import digest_bytes, validate_digest
from buildkit_py.content.errors import (
    ContentError,
    ContentNotFoundError,
    DigestMismatchError,
    InvalidDigestError,
)
from buildkit_py.content.store import (
    LABEL_UNCOMPRESSED,
    ContentInfo,
    ContentStore,
    GCResult,
    Lease,
)
from buildkit_py.content.writer import ContentWriter

__all__ = [
    "LABEL_UNCOMPRESSED",
    "ContentError",
    "ContentInfo",
    "ContentNotFoundError",
    "ContentStore",
    "ContentWriter",
    "DigestMismatchError",
    "GCResult",
    "InvalidDigestError",
    "Lease",
    "digest_bytes",
    "validate_digest",
]
