"""Image references, parsed and normalised the way docker's distribution library does.

``busybox`` -> ``docker.io/library/busybox:latest``; ``host:5000/a/b:tag``; ``name@sha256:…``;
``name:tag@sha256:…`` (the digest wins when pulling). The registry API host of ``docker.io``
is ``registry-1.docker.io``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from buildkit_py.errors import UsageError

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
_REMOTE_NAME_RE = re.compile(rf"^{_REMOTE_NAME}$")
_TAG_RE = re.compile(rf"^{_TAG}$")
_DIGEST_RE = re.compile(rf"^{_DIGEST}$")
_ANCHORED_ID_RE = re.compile(r"^[a-f0-9]{64}$")
_HEX_RE = re.compile(r"[a-f0-9]+")

# Algorithms a registry can verify, with the length of their lowercase hex encoding.
DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


class InvalidReferenceError(UsageError):
    """A malformed image reference or digest."""


def validate_digest(digest: str) -> str:
    """Return ``digest`` if it is ``alg:hex`` with a known algorithm, else raise."""
    alg, sep, hexpart = digest.partition(":")
    if not sep or not _DIGEST_RE.match(digest):
        raise InvalidReferenceError(f"invalid digest {digest!r}: expected sha256:<64 hex digits>")
    length = DIGEST_HEX_LENGTHS.get(alg)
    if length is None:
        raise InvalidReferenceError(f"invalid digest {digest!r}: unsupported algorithm {alg!r}")
    if len(hexpart) != length or not _HEX_RE.fullmatch(hexpart):
        raise InvalidReferenceError(
            f"invalid digest {digest!r}: {alg} needs {length} lowercase hex digits"
        )
    return digest


@dataclass(frozen=True)
class Reference:
    """A fully normalised image reference.

    ``domain`` is the registry name as users write it (``docker.io``, ``localhost:5000``);
    ``path`` the repository inside it (``library/busybox``). ``tag`` and ``digest`` may both
    be set; at least one is set when the reference came from :func:`parse_reference`.
    """

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``domain/path``: the repository's full name."""
        return f"{self.domain}/{self.path}"

    @property
    def api_host(self) -> str:
        """The host (with port) that serves the registry HTTP API."""
        return DOCKER_HUB_API_HOST if self.domain == DEFAULT_DOMAIN else self.domain

    @property
    def object(self) -> str:
        """What to ask the registry for: the digest when known, else the tag."""
        if self.digest:
            return self.digest
        return self.tag or DEFAULT_TAG

    @property
    def familiar_name(self) -> str:
        """The short name docker shows: ``busybox``, ``user/img``, ``host:5000/a/b``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        if self.path.startswith(OFFICIAL_REPO_PREFIX) and "/" not in self.path[8:]:
            return self.path[len(OFFICIAL_REPO_PREFIX):]
        return self.path

    @property
    def familiar(self) -> str:
        """The short form for display, keeping tag and digest."""
        return self.familiar_name + self._suffix()

    def _suffix(self) -> str:
        out = ""
        if self.tag:
            out += ":" + self.tag
        if self.digest:
            out += "@" + self.digest
        return out

    def with_tag(self, tag: str) -> Reference:
        if not _TAG_RE.match(tag):
            raise InvalidReferenceError(f"invalid tag {tag!r}")
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, self.tag, validate_digest(digest))

    def __str__(self) -> str:
        return self.name + self._suffix()


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    # Like docker: the first component is a host only if it looks like one.
    if (
        not sep
        or (
            "." not in first
            and ":" not in first
            and first != "localhost"
            and first.lower() == first
        )
    ):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def parse_reference(text: str, *, default_tag: bool = True) -> Reference:
    """Parse ``text`` like docker (``ParseNormalizedNamed`` + ``TagNameOnly``).

    With ``default_tag`` a reference without tag or digest gets ``:latest``.
    Raises :class:`InvalidReferenceError` with a message naming the problem.
    """
    if not text:
        raise InvalidReferenceError("invalid reference format: empty reference")
    if _ANCHORED_ID_RE.match(text):
        raise InvalidReferenceError(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    rest, at, digest = text.partition("@")
    if at:
        validate_digest(digest)
    tag: str | None = None
    # A ':' after the last '/' separates the tag (a ':' before it is a port).
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG_RE.match(tag):
            raise InvalidReferenceError(
                f"invalid reference format: invalid tag {tag!r} in {text!r}"
            )
    domain, path = _split_domain(rest)
    if path.lower() != path:
        raise InvalidReferenceError(
            f"invalid reference format: repository name ({path}) must be lowercase",
            hint=f"use {text.lower()!r}",
        )
    if not _DOMAIN_RE.match(domain) or not _REMOTE_NAME_RE.match(path):
        raise InvalidReferenceError(f"invalid reference format: {text!r}")
    if len(domain) + 1 + len(path) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReferenceError(
            f"invalid reference format: repository name must not be longer than "
            f"{NAME_TOTAL_LENGTH_MAX} characters: {text!r}"
        )
    if default_tag and tag is None and not at:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest if at else None)


def parse_repository(text: str, *, domain: str | None = None) -> Reference:
    """Parse a repository name without tag/digest (for ``from=`` of cross-repo mounts).

    A bare path (``team/app``) is taken relative to ``domain`` when given.
    """
    if domain is not None and domain != DEFAULT_DOMAIN:
        first = text.partition("/")[0]
        if not ("." in first or ":" in first or first == "localhost"):
            if not _REMOTE_NAME_RE.match(text):
                raise InvalidReferenceError(f"invalid repository name {text!r}")
            return Reference(domain, text)
    ref = parse_reference(text, default_tag=False)
    if ref.tag or ref.digest:
        raise InvalidReferenceError(f"expected a repository name without tag or digest: {text!r}")
    return ref
