"""Content store: blobs addressed by digest, labels, leases and GC."""

from buildkit_py.content.digest import digest_bytes, validate_digest
from buildkit_py.content.errors import (
    ContentError,
    ContentNotFoundError,
    CorruptContentError,
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
from buildkit_py.content.verify import VerifyingReader, copy_verified
from buildkit_py.content.writer import ContentWriter

__all__ = [
    "LABEL_UNCOMPRESSED",
    "ContentError",
    "ContentInfo",
    "ContentNotFoundError",
    "ContentStore",
    "ContentWriter",
    "CorruptContentError",
    "DigestMismatchError",
    "GCResult",
    "InvalidDigestError",
    "Lease",
    "VerifyingReader",
    "copy_verified",
    "digest_bytes",
    "validate_digest",
]
