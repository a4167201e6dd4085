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
