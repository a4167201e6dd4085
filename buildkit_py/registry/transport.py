"""HTTP plumbing for the registry client: pooled httpx clients, auth and bounded retries.

One httpx client per TLS setting keeps connections pooled across hosts and threads.
Requests are retried with exponential backoff on 5xx, 429 and dropped connections.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import certifi

from buildkit_py.errors import UsageError
from buildkit_py.registry.auth import Authorizer
from buildkit_py.registry.credentials import CredentialsProvider
from buildkit_py.registry.errors import RegistryUnavailableError
from buildkit_py.registry.hosts import Endpoint, RegistryHosts
from buildkit_py.registry.lean_httpx import httpx

log = logging.getLogger("buildkit_py.registry")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "buildkit-py"


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; waits ``base_delay * 2**n`` (capped), or ``Retry-After``."""

    attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 8.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), self.max_delay)
            except ValueError:
                pass  # an HTTP date: fall back to our own backoff
        return min(self.base_delay * (2**attempt), self.max_delay)


# TLS checks on, extra CA files, client certificates: one pooled client for each
_ClientKey = tuple[bool, tuple[str, ...], tuple[tuple[str, str], ...]]

class Transport:
    """Sends registry API requests with authentication and retries; thread-safe."""

    def __init__(
        self,
        hosts: RegistryHosts,
        credentials: CredentialsProvider | None,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        max_connections: int = 16,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.hosts = hosts
        self.retry = retry or RetryPolicy()
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 15.0))
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self.sleep = sleep
        self._lock = threading.Lock()
        self._clients: dict[_ClientKey, httpx.Client] = {}
        # One lock per client key: building a client (httpcore's first import) must not
        # hold up threads that want an existing client or another one.
        self._client_locks: dict[_ClientKey, threading.Lock] = {}
        self._plain_http: set[str] = set()  # hosts that fell back from HTTPS to HTTP
        self._warned: set[str] = set()
        self.authorizer = Authorizer(credentials, self._client_for_url)

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def client(self, endpoint: Endpoint) -> httpx.Client:
        return self._client(endpoint.verify_tls, endpoint.ca, endpoint.config.keypairs)

    def _client_for_url(self, url: str) -> httpx.Client:
        host = httpx.URL(url).netloc.decode()
        endpoint = self.hosts.endpoint(host)
        return self.client(endpoint)

    def _client(self, verify: bool, ca: tuple[str, ...],
                keypairs: tuple[tuple[str, str], ...] = ()) -> httpx.Client:
        key = (verify, ca, keypairs)
        client = self._clients.get(key)
        if client is not None:
            return client
        with self._lock:
            key_lock = self._client_locks.setdefault(key, threading.Lock())
        with key_lock:
            client = self._clients.get(key)
            if client is None:
                client = self._new_client(verify, ca, keypairs)
                with self._lock:
                    self._clients[key] = client
            return client

    def _new_client(self, verify: bool, ca: tuple[str, ...],
                    keypairs: tuple[tuple[str, str], ...] = ()) -> httpx.Client:
        """A client whose TLS transport (and its SSL context, ~30-80 ms to load the CA
        bundle) is built on the first ``https://`` request: a plain-HTTP registry never
        pays for it, while an HTTPS redirect from one is still verified."""
        limits = self._limits

        def tls_transport() -> httpx.BaseTransport:
            if not verify and not keypairs:
                return httpx.HTTPTransport(verify=False, limits=limits)
            context = _ssl_context(ca) if verify else _plain_context()
            _load_keypairs(context, keypairs)
            return httpx.HTTPTransport(verify=context, limits=limits)

        return httpx.Client(
            transport=httpx.HTTPTransport(verify=_plain_context(), limits=limits),
            mounts={"https://": _LazyTransport(tls_transport)},
            timeout=self._timeout,
            headers={"User-Agent": USER_AGENT},
            follow_redirects=True,
            trust_env=False,
        )

    def effective(self, endpoint: Endpoint) -> Endpoint:
        """``endpoint`` with a remembered HTTPS -> HTTP fallback applied."""
        if endpoint.http_fallback and endpoint.host in self._plain_http:
            return endpoint.with_scheme("http")
        return endpoint

    def request(
        self,
        endpoint: Endpoint,
        method: str,
        url: str,
        *,
        scopes: tuple[str, ...],
        headers: Mapping[str, str] | None = None,
        content: bytes | Callable[[], Iterator[bytes]] | None = None,
        stream: bool = False,
        retry: bool = True,
    ) -> httpx.Response:
        """Send a request; ``url`` is absolute or a path below the endpoint's base URL.

        Returns the final response whatever its status (after auth and retries), or raises
        :class:`RegistryUnavailableError` when the registry cannot be reached.
        Non-idempotent requests pass ``retry=False`` and get 5xx responses back at once.
        A streamed body is given as a factory of chunk iterators: each attempt (an auth
        challenge answered, a retry) sends it again from the start.
        """
        attempt = 0
        auth_retried = False
        while True:
            ep = self.effective(endpoint)
            full_url = ep.base_url + url if url.startswith("/") else url
            send_headers = dict(headers or {})
            auth = self.authorizer.authorization(ep.host, scopes)
            if auth:
                send_headers["Authorization"] = auth
            client = self.client(ep)
            try:
                body = content() if callable(content) else content
                request = client.build_request(method, full_url, headers=send_headers,
                                               content=body)
                response = client.send(request, stream=stream)
            except httpx.TransportError as err:
                if ep.http_fallback and ep.scheme == "https" and _is_tls_or_connect(err):
                    with self._lock:
                        first = ep.host not in self._plain_http
                        self._plain_http.add(ep.host)
                    if first:
                        log.info("%s: HTTPS failed (%s); falling back to HTTP", ep.host, err)
                    continue
                if retry and attempt + 1 < self.retry.attempts:
                    self.sleep(self.retry.delay(attempt))
                    attempt += 1
                    continue
                raise RegistryUnavailableError(
                    f"cannot reach registry {ep.host}: {_describe(err)}",
                    hint="check the registry address and your network; for a registry without "
                    "TLS set http=true for it in the builder config",
                ) from None
            self._warn_once(response)
            if response.status_code == 401 and not auth_retried:
                if self.authorizer.on_unauthorized(ep.host, scopes, response, auth):
                    response.close()
                    auth_retried = True
                    continue
            if (
                response.status_code in RETRY_STATUSES
                and retry
                and attempt + 1 < self.retry.attempts
            ):
                delay = self.retry.delay(attempt, response.headers.get("retry-after"))
                response.close()
                self.sleep(delay)
                attempt += 1
                continue
            return response

    def _warn_once(self, response: httpx.Response) -> None:
        for warning in response.headers.get_list("warning"):
            if warning.startswith("299") and warning not in self._warned:
                self._warned.add(warning)
                log.warning("registry %s: %s", response.url.host, warning)


class _LazyTransport(httpx.BaseTransport):
    """Builds the wrapped transport on its first request (thread-safe)."""

    def __init__(self, factory: Callable[[], httpx.BaseTransport]) -> None:
        self._factory = factory
        self._transport: httpx.BaseTransport | None = None
        self._lock = threading.Lock()
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._transport
        if transport is None:
            with self._lock:
                if self._closed:
                    raise RuntimeError("transport is closed")
                if self._transport is None:
                    self._transport = self._factory()
                transport = self._transport
        return transport.handle_request(request)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()


def _plain_context() -> ssl.SSLContext:
    """What httpx builds for ``verify=False``, without its certifi import: the transport
    for ``http://`` URLs never negotiates TLS."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _ssl_context(ca: tuple[str, ...]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certifi.where())
    for path in ca:
        try:
            context.load_verify_locations(cafile=path)
        except (OSError, ssl.SSLError) as err:
            raise UsageError(f"cannot load registry CA certificate {path}: {err}") from None
    return context


def _load_keypairs(context: ssl.SSLContext, keypairs: tuple[tuple[str, str], ...]) -> None:
    """Client certificates (``[[registry."host".keypair]]``) the registry may ask for."""
    for cert, key in keypairs:
        try:
            context.load_cert_chain(certfile=cert, keyfile=key)
        except (OSError, ssl.SSLError) as err:
            raise UsageError(f"cannot load registry client certificate {cert} (key {key}): "
                             f"{err}") from None


def _is_tls_or_connect(err: httpx.TransportError) -> bool:
    return isinstance(err, httpx.ConnectError) or "SSL" in str(err)


def _describe(err: httpx.TransportError) -> str:
    text = str(err) or type(err).__name__
    return text.splitlines()[0]
