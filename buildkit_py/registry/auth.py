"""Registry authentication: ``WWW-Authenticate`` challenges, Basic auth and Bearer tokens.

A host's challenge is remembered after its first 401, so later requests (other repositories,
parallel blob fetches) authenticate up front instead of paying a 401 round trip each.
Tokens are cached per (host, scopes) until shortly before they expire.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from buildkit_py.registry.credentials import Credentials, CredentialsProvider
from buildkit_py.registry.errors import AuthenticationError, RegistryError, login_hint
from buildkit_py.registry.lean_httpx import httpx

DEFAULT_TOKEN_LIFETIME = 60.0
CLIENT_ID = "buildkit-py"

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_AUTH_PARAM_RE = re.compile(
    rf"\s*({_TOKEN})\s*=\s*(?:\"((?:[^\"\\]|\\.)*)\"|({_TOKEN}))\s*(?:,|$)"
)
_SCHEME_RE = re.compile(rf"\s*,?\s*({_TOKEN})(?:\s+|$)")


@dataclass(frozen=True)
class Challenge:
    """One auth challenge: ``scheme`` lowercased (``bearer``/``basic``) and its parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_challenges(values: Iterable[str]) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` header values (several challenges may share one value)."""
    out: list[Challenge] = []
    for value in values:
        pos = 0
        while pos < len(value):
            scheme = _SCHEME_RE.match(value, pos)
            if scheme is None:
                break
            pos = scheme.end()
            params: dict[str, str] = {}
            while pos < len(value):
                param = _AUTH_PARAM_RE.match(value, pos)
                if param is None:
                    break
                raw = param.group(2) if param.group(2) is not None else param.group(3)
                params[param.group(1).lower()] = re.sub(r"\\(.)", r"\1", raw)
                pos = param.end()
            out.append(Challenge(scheme.group(1).lower(), params))
    return out


def scope_for(repository: str, actions: Iterable[str]) -> str:
    return f"repository:{repository}:{','.join(actions)}"


def merge_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Union the actions of scopes naming the same resource, sorted for use as a cache key."""
    merged: dict[str, list[str]] = {}
    for scope in scopes:
        resource, sep, actions = scope.rpartition(":")
        if not sep or not resource:
            continue
        have = merged.setdefault(resource, [])
        have.extend(a for a in actions.split(",") if a and a not in have)
    return tuple(
        sorted(f"{res}:{','.join(sorted(acts))}" for res, acts in merged.items())
    )


def basic_header(creds: Credentials) -> str:
    raw = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


@dataclass
class _Token:
    value: str
    expires_at: float | None  # monotonic clock; None = no expiry known


class Authorizer:
    """Chooses the ``Authorization`` header for registry requests; thread-safe.

    ``http_client(url)`` returns the httpx client to reach a token realm with;
    ``registry_of(host)`` maps an API host back to the name credentials are stored under.
    """

    def __init__(
        self,
        credentials: CredentialsProvider | None,
        http_client: Callable[[str], httpx.Client],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._credentials = credentials
        self._http_client = http_client
        self._clock = clock
        self._lock = threading.Lock()
        self._challenges: dict[str, Challenge] = {}
        self._tokens: dict[tuple[str, tuple[str, ...]], _Token] = {}
        self._creds: dict[str, Credentials | None] = {}

    def credentials(self, host: str) -> Credentials | None:
        with self._lock:
            if host not in self._creds:
                self._creds[host] = (
                    self._credentials.get(host) if self._credentials is not None else None
                )
            return self._creds[host]

    def authorization(self, host: str, scopes: tuple[str, ...]) -> str | None:
        """The header to send to ``host`` for ``scopes``, or None to go anonymous."""
        with self._lock:
            challenge = self._challenges.get(host)
        if challenge is None:
            return None
        creds = self.credentials(host)
        if challenge.scheme == "basic":
            return basic_header(creds) if creds is not None and creds.username else None
        token = self._token(host, scopes, challenge, creds)
        return f"Bearer {token.value}"

    def on_unauthorized(
        self, host: str, scopes: tuple[str, ...], response: httpx.Response, sent: str | None
    ) -> bool:
        """Learn from a 401 to a request sent with ``sent`` authorization; True when a retry
        would carry different authorization (and so may succeed)."""
        challenges = parse_challenges(response.headers.get_list("www-authenticate"))
        bearer = next((c for c in challenges if c.scheme == "bearer" and "realm" in c.params), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        chosen = bearer or basic
        if chosen is None:
            return False
        with self._lock:
            self._challenges[host] = chosen
        creds = self.credentials(host)
        if chosen.scheme == "basic":
            fresh = basic_header(creds) if creds is not None and creds.username else None
            return fresh is not None and fresh != sent
        extra = chosen.params.get("scope", "")
        wanted = merge_scopes([*scopes, *extra.split(" ")])
        stale = sent[len("Bearer "):] if sent and sent.startswith("Bearer ") else None
        token = self._token(host, wanted, chosen, creds, stale=stale)
        if wanted != scopes:
            with self._lock:
                self._tokens[(host, scopes)] = token
        return f"Bearer {token.value}" != sent

    def _token(
        self,
        host: str,
        scopes: tuple[str, ...],
        challenge: Challenge,
        creds: Credentials | None,
        *,
        stale: str | None = None,
    ) -> _Token:
        """A valid token for ``scopes``: the cached one unless it is ``stale`` (rejected)."""
        if creds is not None and creds.registry_token:
            return _Token(creds.registry_token, None)
        key = (host, scopes)
        # One lock around fetching: parallel requests that all hit a 401 share one token.
        with self._lock:
            cached = self._tokens.get(key)
            now = self._clock()
            if cached is not None and cached.value != stale and (
                cached.expires_at is None or cached.expires_at > now
            ):
                return cached
            value, lifetime = self._fetch_token(host, scopes, challenge, creds)
            # Renew a little early so a token does not expire in flight.
            margin = min(10.0, lifetime / 10)
            token = self._tokens[key] = _Token(value, now + lifetime - margin)
            return token

    def _fetch_token(
        self,
        host: str,
        scopes: tuple[str, ...],
        challenge: Challenge,
        creds: Credentials | None,
    ) -> tuple[str, float]:
        realm = challenge.params["realm"]
        service = challenge.params.get("service", "")
        client = self._http_client(realm)
        try:
            if creds is not None and creds.identity_token:
                form = {
                    "grant_type": "refresh_token",
                    "refresh_token": creds.identity_token,
                    "client_id": CLIENT_ID,
                    "scope": " ".join(scopes),
                }
                if service:
                    form["service"] = service
                response = client.post(realm, data=form)
            else:
                params: list[tuple[str, str | int | float | bool | None]] = []
                if service:
                    params.append(("service", service))
                params.extend(("scope", s) for s in scopes)
                headers = {}
                if creds is not None and creds.username:
                    params.append(("account", creds.username))
                    headers["Authorization"] = basic_header(creds)
                response = client.get(realm, params=params, headers=headers)
        except httpx.HTTPError as err:
            raise RegistryError(
                f"cannot get an auth token for {host} from {realm}: {err}"
            ) from None
        if response.status_code in (401, 403):
            who = "the stored credentials were rejected" if creds else "anonymous access refused"
            raise AuthenticationError(
                f"authentication failed for {host}: {who} by {realm} (HTTP {response.status_code})",
                hint=f"run `{login_hint(host)}` with valid credentials",
            )
        if not response.is_success:
            raise RegistryError(
                f"auth token request for {host} to {realm} failed: HTTP {response.status_code}"
            )
        return _parse_token_response(response, host)


def _parse_token_response(response: httpx.Response, host: str) -> tuple[str, float]:
    try:
        doc: Any = response.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise RegistryError(f"auth token response for {host} is not a JSON object")
    token = doc.get("token") or doc.get("access_token")
    if not isinstance(token, str) or not token:
        raise RegistryError(f"auth token response for {host} has no token")
    try:
        lifetime = float(doc.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
    except (TypeError, ValueError):
        lifetime = DEFAULT_TOKEN_LIFETIME
    return token, max(lifetime, 1.0)
