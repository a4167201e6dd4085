"""``http://`` and ``https://`` sources: one downloaded file in a snapshot, keyed, named
and cached the way BuildKit's HTTP source does it.

The cache key is a digest of the saved file's name, mode, owner, content digest and
``Last-Modified`` (plus the auth-secret name and extra headers when set):

* ``--checksum`` given: the key uses that digest and is known without touching the
  network; on a cache miss the file is downloaded and must match it, else the step fails
  with both digests ("digest mismatch for URL: GOT (expected: WANT)", BuildKit's words).
* no checksum: the key needs the content digest. Earlier downloads that came with an
  ``ETag`` are remembered per URL (``http_index``); a rebuild first sends one ``HEAD``
  with ``If-None-Match`` listing them and, when the server names one of them (200 or
  304), reuses that download without fetching a byte. Otherwise (or when HEAD fails) a
  ``GET`` carrying the same ``If-None-Match`` either gets a 304 or the new body. A URL
  served without an ETag is downloaded on every build; its key is still its content
  digest, so the steps that use it hit the cache when the bytes did not change.

The file: named by ``http.filename``, else the response's ``Content-Disposition``
filename, else the last segment of the URL path, else ``download`` (names are cut to a
base name; ``.``/``..``/control characters fall back to ``download``). Mode
``http.perm`` (default 0600), owner ``http.uid``/``http.gid`` (default 0:0), mtime from
``Last-Modified`` (else the Unix epoch). The Dockerfile's ``ADD URL`` always sets the
name from the URL, and an archive stays packed unless ``ADD --unpack=true``; both are
the copy's business, not this source's.

The network: httpx (imported on first download), HTTP/2 when ``h2`` is installed,
redirects (at most 10, as Go), proxies from ``HTTP(S)_PROXY``/``NO_PROXY``, TLS checked
against the system store, certifi's and the ``[http] ca`` files of the builder config.
Credentials come from the build's secrets as BuildKit names them:
``HTTP_AUTH_HEADER_<host>`` (the whole Authorization value) or ``HTTP_AUTH_TOKEN_<host>``
(sent as ``Bearer``), or the secret named by ``http.authheadersecret``.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from buildkit_py.errors import BuildError, UsageError, UserError
from buildkit_py.solver.cancel import Cancelled
from buildkit_py.solver.worker import CacheMap, OpContext, Result
from buildkit_py.source.http_index import Download, DownloadIndex
from buildkit_py.worker.results import SnapshotResult

if TYPE_CHECKING:
    import ssl

    from buildkit_py.llb import ops_pb2
    from buildkit_py.registry.lean_httpx import httpx
    from buildkit_py.worker.ops.base import OpWorker

DEFAULT_NAME = "download"
DEFAULT_PERM = 0o600
USER_AGENT = "buildkit-py"
MAX_REDIRECTS = 10  # Go's http.Client stops after 10
CONNECT_TIMEOUT = 30.0  # seconds, as Go's default dialer
READ_TIMEOUT = 300.0  # seconds without a byte before a download is given up
_KEY_VERSION = "bkpy-http-v1"
AUTH_HEADER_PREFIX = "HTTP_AUTH_HEADER_"
AUTH_TOKEN_PREFIX = "HTTP_AUTH_TOKEN_"
_HEADER_ATTR = "http.header."
_USER_HEADERS = {"accept": "Accept", "user-agent": "User-Agent"}  # others are dropped
_PROGRESS_EVERY = 0.1  # seconds between download progress updates


# names, times, numbers (pure) ------------------------------------------------------------

def go_base(path: str) -> str:
    """Go's ``path.Base``: the last element, trailing slashes ignored; ``.`` for an
    empty path, ``/`` for slashes only."""
    if not path:
        return "."
    path = path.rstrip("/")
    if not path:
        return "/"
    return path.rsplit("/", 1)[-1]


def safe_file_name(name: str) -> str:
    """A base name safe to create (BuildKit's ``SafeFileName``): ``download`` for an
    empty name, ``.``, ``..`` or one with a control character."""
    base = go_base(name.strip())
    if base in ("", ".", "..", "/"):
        return DEFAULT_NAME
    if any(unicodedata.category(ch) == "Cc" for ch in base):
        return DEFAULT_NAME
    return base


def disposition_filename(value: str) -> str | None:
    """The ``filename`` parameter of a Content-Disposition header (RFC 2231 forms too)."""
    # reason: email's header parsing is needed only for a response that has the header
    from email.message import Message

    msg = Message()
    msg["Content-Disposition"] = value
    try:
        return msg.get_filename()
    except (ValueError, LookupError):
        return None


def file_name(url: str, manual: str = "", content_disposition: str | None = None) -> str:
    """The downloaded file's name, in BuildKit's order: ``http.filename``, the
    Content-Disposition filename (unless it ends in ``/``), the URL path's last segment."""
    if manual:
        return safe_file_name(manual)
    if content_disposition:
        named = disposition_filename(content_disposition)
        if named and not named.endswith("/"):
            return safe_file_name(go_base(named))
    base = go_base(unquote(urlsplit(url).path))
    if base not in (".", "/"):
        return safe_file_name(base)
    return DEFAULT_NAME


def parse_http_time(value: str) -> float | None:
    """Seconds since the epoch of an HTTP date (RFC 1123, RFC 850, asctime), or None."""
    if not value:
        return None
    # reason: only responses with Last-Modified need a date parser
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def format_http_time(seconds: float) -> str:
    """``Mon, 02 Jan 2006 15:04:05 GMT`` (Go's ``http.TimeFormat``)."""
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(seconds))


def parse_go_int(text: str) -> int:
    """An integer as Go's ``strconv.ParseInt(text, 0, 64)`` reads it: ``0x``/``0o``/``0b``
    prefixes and a leading ``0`` for octal (``0600``)."""
    s = text
    sign = -1 if s.startswith("-") else 1
    s = s[1:] if s[:1] in "+-" else s
    low = s.lower()
    if low[:2] in ("0x", "0o", "0b"):
        return sign * int(s[2:].replace("_", ""), {"x": 16, "o": 8, "b": 2}[low[1]])
    if len(s) > 1 and s[0] == "0":
        return sign * int(s[1:].replace("_", ""), 8)
    if not s.isdigit():
        raise ValueError(text)
    return sign * int(s)


def etag_value(value: str) -> str:
    """An ETag for comparison: a weak tag's ``W/`` dropped (as BuildKit)."""
    return value.removeprefix("W/")


def _digest(doc: Any) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


# the source's options --------------------------------------------------------------------

def _int_attr(attrs: Mapping[str, str], key: str) -> int:
    raw = attrs.get(key)
    if not raw:
        return 0
    try:
        return parse_go_int(raw)
    except ValueError:
        raise UserError(f'invalid {key} {raw!r}: strconv.ParseInt: parsing "{raw}": '
                        "invalid syntax") from None


@dataclass(frozen=True)
class HttpSpec:
    """An HTTP source's identifier and attributes."""

    url: str
    checksum: str = ""
    filename: str = ""
    perm: int = 0
    uid: int = 0
    gid: int = 0
    auth_header_secret: str = ""
    headers: tuple[tuple[str, str], ...] = ()  # sorted by name

    @classmethod
    def from_op(cls, identifier: str, attrs: Mapping[str, str]) -> HttpSpec:
        headers = sorted(
            (_USER_HEADERS[name[len(_HEADER_ATTR):].lower()], value)
            for name, value in attrs.items()
            if name.startswith(_HEADER_ATTR) and name[len(_HEADER_ATTR):].lower() in _USER_HEADERS)
        return cls(url=identifier, checksum=attrs.get("http.checksum", ""),
                   filename=attrs.get("http.filename", ""),
                   perm=_int_attr(attrs, "http.perm"), uid=_int_attr(attrs, "http.uid"),
                   gid=_int_attr(attrs, "http.gid"),
                   auth_header_secret=attrs.get("http.authheadersecret", ""),
                   headers=tuple(headers))

    @property
    def mode(self) -> int:
        return self.perm or DEFAULT_PERM

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    def url_key(self) -> str:
        """What earlier downloads are remembered under (never leaves the builder)."""
        return _digest([_KEY_VERSION, "url", self.url, self.filename, self.perm, self.uid,
                        self.gid, self.auth_header_secret, self.headers])

    def cache_key(self, filename: str, digest: str, last_modified: float | None) -> str:
        """The op's cache key: the saved file, not the URL (BuildKit's formatCacheKey)."""
        modified = format_http_time(last_modified) if last_modified is not None else ""
        return _digest([_KEY_VERSION, filename, self.perm, self.uid, self.gid, digest,
                        modified, self.auth_header_secret, self.headers])


# errors ----------------------------------------------------------------------------------

_CA_HINT = ("if the server's certificate comes from a private CA, list the CA's PEM file "
            "under [http] ca in the builder config (bkpyd.toml)")
# (text in the error, what Go would say, hint); the first match wins
_TRANSPORT_ERRORS: tuple[tuple[str, str, str], ...] = (
    ("CERTIFICATE_VERIFY_FAILED", "tls: failed to verify certificate: x509: {detail}",
     _CA_HINT),
    ("Name or service not known", "dial tcp: lookup {host}: no such host",
     "check the host name in the URL and the builder's DNS"),
    ("No address associated with hostname", "dial tcp: lookup {host}: no such host",
     "check the host name in the URL and the builder's DNS"),
    ("nodename nor servname", "dial tcp: lookup {host}: no such host",
     "check the host name in the URL and the builder's DNS"),
    ("Temporary failure in name resolution",
     "dial tcp: lookup {host}: temporary failure in name resolution",
     "the builder could not reach a DNS server; check its network"),
    ("Connection refused", "dial tcp {hostport}: connect: connection refused",
     "nothing accepts connections at that address; is the server up?"),
    ("Network is unreachable", "dial tcp {hostport}: connect: network is unreachable",
     "the builder has no route to that address"),
    ("WRONG_VERSION_NUMBER", "tls: first record does not look like a TLS handshake",
     "the server does not speak TLS on that port; try http://"),
    ("[SSL", "tls: {detail}", _CA_HINT),
)


def _ssl_detail(text: str) -> str:
    detail = text.split("certificate verify failed:", 1)[-1] if "verify failed" in text \
        else text.split("]", 1)[-1]
    return detail.split(" (_ssl.c", 1)[0].strip() or text


def transport_error(url: str, err: Exception) -> BuildError:
    """A failed request as Go words it (``Get "URL": ...``), with a hint."""
    # reason: httpx is imported only when a build downloads something
    from buildkit_py.registry.lean_httpx import httpx

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    text = str(err) or type(err).__name__
    if isinstance(err, httpx.TooManyRedirects):
        return BuildError(f'Get "{url}": stopped after {MAX_REDIRECTS} redirects',
                          hint="the server redirects in a loop")
    if isinstance(err, httpx.TimeoutException):
        return BuildError(f'Get "{url}": i/o timeout ({text})',
                          hint="the server did not answer in time; try again later")
    for needle, what, hint in _TRANSPORT_ERRORS:
        if needle in text:
            said = what.format(host=host, hostport=f"{host}:{port}", detail=_ssl_detail(text))
            return BuildError(f'Get "{url}": {said}', hint=hint)
    return BuildError(f'Get "{url}": {text.splitlines()[0]}')


_CHECKSUM_HINT = ("the file at the URL is not the one the checksum names; update --checksum "
                  "if the new file is the right one")


def digest_mismatch(url: str, got: str, want: str, hint: str = _CHECKSUM_HINT) -> BuildError:
    return BuildError(f"digest mismatch for {url}: {got} (expected: {want})", hint=hint)


# the builder's share ---------------------------------------------------------------------

class HttpSources:
    """What every HTTP source of a builder shares: one HTTP client (made on the first
    download) and the index of earlier downloads."""

    def __init__(self, index_path: Path, ca: Sequence[str] = ()) -> None:
        self.index = DownloadIndex(index_path)
        self.ca = tuple(ca)
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = self._new_client()
            return self._client

    def _new_client(self) -> httpx.Client:
        # reason: httpx (~60 ms) only for builds that download something
        import importlib.util

        from buildkit_py.registry.lean_httpx import httpx

        return httpx.Client(
            verify=self._ssl_context(),
            http2=importlib.util.find_spec("h2") is not None,
            follow_redirects=True, max_redirects=MAX_REDIRECTS, trust_env=True,
            timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
            headers={"User-Agent": USER_AGENT})

    def _ssl_context(self) -> ssl.SSLContext:
        # reason: the CA bundles are loaded only for a builder's first download
        import ssl

        import certifi

        context = ssl.create_default_context()  # the system store
        context.load_verify_locations(cafile=certifi.where())
        for path in self.ca:
            try:
                context.load_verify_locations(cafile=path)
            except (OSError, ssl.SSLError) as err:
                raise UsageError(f"cannot load HTTP CA certificate {path}: {err}",
                                 hint="fix [http] ca in the builder config") from None
        return context

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
        self.index.close()


# the op handler --------------------------------------------------------------------------

@dataclass(frozen=True)
class _Resolved:
    digest: str
    filename: str
    last_modified: float | None
    snapshot: str | None  # the download, when one is at hand


class HttpSourceHandler:
    """One HTTP source vertex (see the module docstring for how it keys and caches)."""

    def __init__(self, worker: OpWorker, op: ops_pb2.Op, sources: HttpSources) -> None:
        self.worker = worker
        self.sources = sources
        self.spec = HttpSpec.from_op(op.source.identifier, dict(op.source.attrs))
        self._resolved: _Resolved | None = None
        self._response: httpx.Response | None = None

    # solver.worker.OpHandler
    def cache_map(self, ctx: OpContext) -> CacheMap:
        spec = self.spec
        if spec.checksum:
            return CacheMap(spec.cache_key(file_name(spec.url, spec.filename),
                                           spec.checksum, None))
        if self._resolved is None:
            self._resolved = self._resolve(ctx)
        r = self._resolved
        return CacheMap(spec.cache_key(r.filename, r.digest, r.last_modified))

    def exec(self, ctx: OpContext, inputs: Sequence[Result]) -> list[Result]:
        r = self._resolved
        if r is not None and r.snapshot is not None and self._alive(r.snapshot):
            return [SnapshotResult(r.snapshot, self.worker.sn.usage(r.snapshot).size)]
        want = self.spec.checksum or (r.digest if r is not None else "")
        with self._get(ctx, {}) as resp:
            self._check_status(resp)
            saved = self._save(ctx, resp, want, report=True)
        assert saved.snapshot is not None
        return [SnapshotResult(saved.snapshot, self.worker.sn.usage(saved.snapshot).size)]

    def cancel(self) -> None:
        resp = self._response
        if resp is not None:
            resp.close()

    # why it ran (solver.worker.ExplainsMisses)
    def change_summary(self, ctx: OpContext) -> str:
        r = self._resolved
        return json.dumps({"url": self.spec.url,
                           "digest": self.spec.checksum or (r.digest if r else "")})

    def describe_change(self, ctx: OpContext, old_summary: str) -> str | None:
        try:
            old = json.loads(old_summary)
        except ValueError:
            return None
        if old.get("url") == self.spec.url and old.get("digest") != json.loads(
                self.change_summary(ctx))["digest"]:
            return f"the file at {self.spec.url} changed"
        return None

    # resolving the content digest ----------------------------------------------------------

    def _alive(self, snapshot: str) -> bool:
        try:
            self.worker.sn.stat(snapshot)
        except UserError:
            return False
        return True

    def _resolve(self, ctx: OpContext) -> _Resolved:
        """The content digest of the URL now: a remembered download the server says is
        current (its ETag), else a new download."""
        spec = self.spec
        known = {d.etag: d for d in self.sources.index.lookup(spec.url_key(), self._alive)
                 if d.etag}
        if not known:
            with self._get(ctx, {}) as resp:
                self._check_status(resp)
                return self._save(ctx, resp, "")
        # some servers omit the ETag from a 304 when only one was asked about
        only = next(iter(known)) if len(known) == 1 else ""
        conditional = {"If-None-Match": ", ".join(known)}
        hit = self._head(ctx, conditional, known, only)
        if hit is not None:
            return hit
        with self._get(ctx, conditional) as resp:
            self._check_status(resp)
            if resp.status_code != 304:
                return self._save(ctx, resp, "")
            tag = etag_value(resp.headers.get("ETag", "")) or only
            if tag not in known:
                raise BuildError(f"invalid not-modified ETag: {tag}",
                                 hint=f"{spec.url} answered 304 for an ETag never sent")
            return self._reuse(known[tag])

    def _head(self, ctx: OpContext, conditional: dict[str, str], known: dict[str, Download],
              only: str) -> _Resolved | None:
        """BuildKit asks with HEAD first (some servers mishandle If-None-Match on GET);
        any failure just falls through to the GET."""
        # reason: httpx is imported only when a build downloads something
        from buildkit_py.registry.lean_httpx import httpx

        headers = {**self._headers(ctx), **conditional, "Accept-Encoding": "gzip"}
        try:
            resp = self.sources.client().head(self.spec.url, headers=headers)
        except httpx.HTTPError:
            return None
        if resp.status_code not in (200, 304):
            return None
        tag = etag_value(resp.headers.get("ETag", ""))
        if not tag and resp.status_code == 304:
            tag = only
        hit = known.get(tag)
        return self._reuse(hit) if hit is not None else None

    def _reuse(self, download: Download) -> _Resolved:
        resolved = _Resolved(download.digest, download.filename,
                             parse_http_time(download.last_modified), download.snapshot)
        if self.spec.checksum and resolved.digest != self.spec.checksum:
            raise digest_mismatch(self.spec.url, resolved.digest, self.spec.checksum)
        return resolved

    # downloading -----------------------------------------------------------------------

    def _headers(self, ctx: OpContext) -> dict[str, str]:
        headers = dict(self.spec.headers)
        auth = self._authorization(ctx)
        if auth is not None:
            headers["Authorization"] = auth
        return headers

    def _authorization(self, ctx: OpContext) -> str | None:
        spec = self.spec
        lookup = self.worker.secrets(ctx)
        if spec.auth_header_secret:
            value = lookup(spec.auth_header_secret)
            if value is None:
                raise BuildError(f"failed to retrieve HTTP auth secret "
                                 f"{spec.auth_header_secret}: secret not found",
                                 hint=f"pass it with --secret id={spec.auth_header_secret},...")
            return value.decode()
        found = None
        for name, bearer in ((AUTH_HEADER_PREFIX + spec.host, False),
                             (AUTH_TOKEN_PREFIX + spec.host, True)):
            value = lookup(name)
            if value is not None:
                found = ("Bearer " if bearer else "") + value.decode()
        return found

    @contextmanager
    def _get(self, ctx: OpContext, extra: dict[str, str]) -> Iterator[httpx.Response]:
        # reason: httpx is imported only when a build downloads something
        from buildkit_py.registry.lean_httpx import httpx

        url = self.spec.url
        headers = {**self._headers(ctx), **extra}
        try:
            with self.sources.client().stream("GET", url, headers=headers) as resp:
                self._response = resp
                yield resp
        except (httpx.HTTPError, httpx.StreamError) as err:
            if ctx.cancel.cancelled:  # cancel() closed the response under the reader
                raise Cancelled(ctx.cancel.reason) from None
            raise transport_error(url, err) from None
        finally:
            self._response = None

    def _check_status(self, resp: httpx.Response) -> None:
        if resp.status_code < 200 or resp.status_code >= 400:
            raise BuildError(f"invalid response status {resp.status_code} for {self.spec.url}",
                             hint=_STATUS_HINTS.get(resp.status_code,
                                                    "the server refused the download"))

    def _save(self, ctx: OpContext, resp: httpx.Response, want: str, *,
              report: bool = False) -> _Resolved:
        """Stream the body into a new snapshot as one file and remember it. ``want``: the
        digest it must have (nothing is committed otherwise). ``report``: show the bytes
        as a status of the step; only once the step has started (in ``exec``): the
        display knows a step by its start, which comes after ``cache_map``."""
        spec = self.spec
        name = file_name(spec.url, spec.filename, resp.headers.get("Content-Disposition"))
        last_modified = resp.headers.get("Last-Modified", "")
        mtime = parse_http_time(last_modified)
        h = hashlib.sha256()
        total = None if resp.headers.get("Content-Encoding") else _int_or_none(
            resp.headers.get("Content-Length"))
        progress = ctx.progress
        label = f"downloading {name}"
        with self.worker.snapshots.write(None) as layer:
            path = layer.path / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                         DEFAULT_PERM)
            with os.fdopen(fd, "wb") as f:
                shown = 0.0
                for chunk in resp.iter_bytes(1 << 20):
                    if ctx.cancel.cancelled:
                        raise Cancelled(ctx.cancel.reason)
                    f.write(chunk)
                    h.update(chunk)
                    now = time.monotonic()
                    if report and now - shown >= _PROGRESS_EVERY:
                        progress.status(label, resp.num_bytes_downloaded, total)
                        shown = now
            if report:
                progress.status(label, resp.num_bytes_downloaded, total, completed=True)
            digest = "sha256:" + h.hexdigest()
            if want and digest != want:
                raise digest_mismatch(spec.url, digest, want, _CHECKSUM_HINT if spec.checksum
                                      else "the file changed on the server during the "
                                           "build; run the build again")
            os.chmod(path, spec.mode)
            if spec.uid or spec.gid:
                os.chown(path, spec.uid, spec.gid)
            stamp = mtime if mtime is not None else 0.0
            os.utime(path, (stamp, stamp))
            same = self._same_download(digest, name, last_modified)
            layer.discard = same is not None
        snapshot = same.snapshot if same is not None else layer.result.key if layer.result else None
        assert snapshot is not None
        etag = etag_value(resp.headers.get("ETag", ""))
        self.sources.index.remember(spec.url_key(), Download(
            etag, digest, last_modified, name, snapshot))
        return _Resolved(digest, name, mtime, snapshot)

    def _same_download(self, digest: str, name: str, last_modified: str) -> Download | None:
        """An earlier download of this URL with the same file (a URL without an ETag is
        fetched on every build: its bytes are kept once)."""
        for d in self.sources.index.lookup(self.spec.url_key(), self._alive):
            if (d.digest, d.filename, d.last_modified) == (digest, name, last_modified):
                return d
        return None


_STATUS_HINTS = {
    401: "the server wants credentials: pass a secret HTTP_AUTH_TOKEN_<host> or "
         "HTTP_AUTH_HEADER_<host> (--secret)",
    403: "the server refused access to the file",
    404: "no file at that URL: check its spelling",
}


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def http_handler_factory(sources: HttpSources) -> Callable[[OpWorker, ops_pb2.Op],
                                                          HttpSourceHandler]:
    """The worker's factory for the HTTP schemes, over one builder's shared state."""

    def make(worker: OpWorker, op: ops_pb2.Op) -> HttpSourceHandler:
        return HttpSourceHandler(worker, op, sources)

    return make
