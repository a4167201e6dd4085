"""Errors raised by the content store."""

from __future__ import annotations

from buildkit_py.errors import UserError


class ContentError(UserError):
    """A content-store operation failed."""


class InvalidDigestError(ContentError):
    """A digest string is not ``sha256:<64 lowercase hex>``."""


class ContentNotFoundError(ContentError):
    """No blob with this digest is stored."""


class DigestMismatchError(ContentError):
    """Written bytes do not match the expected digest or size; nothing was stored."""


class CorruptContentError(DigestMismatchError):
    """A stored blob's bytes no longer hash to its digest (disk damage, manual edits)."""

    def __init__(self, digest: str, actual: str) -> None:
        super().__init__(
            f"blob {digest} in the content store is corrupted: its content hashes to {actual}",
            hint="remove corrupted blobs with `bkpy prune --corrupt` (`bkpy du --verify` "
                 "lists them), then build again to re-create or re-pull them")
        self.digest = digest
        self.actual = actual
