"""Errors of the registry client: each names what failed and what to do about it."""

from __future__ import annotations

import json
from dataclasses import dataclass

from buildkit_py.errors import UserError


class RegistryError(UserError):
    """A registry request failed in a way the user can act on."""


class NotFoundError(RegistryError):
    """A manifest, repository or blob does not exist (or is hidden without credentials)."""


class AuthenticationError(RegistryError):
    """401: credentials missing or rejected."""


class AccessDeniedError(RegistryError):
    """403: authenticated but not allowed."""


class DigestMismatchError(RegistryError):
    """Content did not match its digest or size; it was not stored."""


class InvalidManifestError(RegistryError):
    """A manifest/index is malformed or of an unsupported kind."""


class PlatformNotFoundError(RegistryError):
    """An index has no manifest for the requested platform."""


class RegistryUnavailableError(RegistryError):
    """The registry could not be reached or kept failing after retries."""


class CredentialsError(RegistryError):
    """docker config.json or a credential helper could not be used."""


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of a distribution-spec error body."""

    code: str
    message: str


def parse_error_body(body: bytes) -> list[ErrorDetail]:
    """The ``errors`` of a JSON error body; empty for non-JSON or unexpected shapes."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list):
        return []
    return [
        ErrorDetail(str(e.get("code", "")), str(e.get("message", "")))
        for e in errors
        if isinstance(e, dict)
    ]


def describe(details: list[ErrorDetail]) -> str:
    return "; ".join(
        f"{d.code}: {d.message}" if d.message else d.code for d in details if d.code or d.message
    )


NOT_FOUND_CODES = frozenset({"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"})


def login_hint(registry: str) -> str:
    """What to run to log in to ``registry`` (a reference domain)."""
    return "docker login" if registry == "docker.io" else f"docker login {registry}"
