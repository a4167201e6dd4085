"""Digest strings (``sha256:<hex>``): validation and computation."""

from __future__ import annotations

import hashlib
import re

from buildkit_py.content.errors import InvalidDigestError

ALGORITHM = "sha256"
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def validate_digest(digest: str) -> str:
    """Return the hex part of a sha256 digest, or raise InvalidDigestError."""
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise InvalidDigestError(f"invalid digest {digest!r}: want sha256:<64 lowercase hex>")
    return digest[len(ALGORITHM) + 1 :]


def digest_bytes(data: bytes) -> str:
    """The ``sha256:<hex>`` digest of ``data``."""
    return f"{ALGORITHM}:{hashlib.sha256(data).hexdigest()}"
