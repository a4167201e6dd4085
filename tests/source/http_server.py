"""A real HTTP(S) file server on loopback for the HTTP source's tests.

It serves :class:`Resource` entries by path, answers ``HEAD`` like ``GET`` without the
body, honours ``If-None-Match`` (304 with the ETag), follows the resource's redirect and
status, and records every request (method, path, If-None-Match, Authorization) and how
many bodies it sent, so a test can tell a conditional check from a download. With
``tls=True`` it speaks HTTPS with a certificate for 127.0.0.1/localhost signed by a CA
made for the test (``ca_pem``).
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
LAST_MODIFIED_EPOCH = 1445412480


@dataclass
class Resource:
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    content_disposition: str | None = None
    status: int = 200
    location: str | None = None  # a redirect (status 302 unless set otherwise)
    content_type: str = "application/octet-stream"
    head_status: int | None = None  # a server that mishandles HEAD answers this instead


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    if_none_match: str | None
    authorization: str | None
    status: int


@dataclass
class Recorder:
    requests: list[Request] = field(default_factory=list)
    bodies_sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def make_ca(where: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for 127.0.0.1 and localhost signed by it:
    (ca.pem, server.pem, server.key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bkpy test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    where.mkdir(parents=True, exist_ok=True)
    ca_pem, cert_pem, key_pem = where / "ca.pem", where / "server.pem", where / "server.key"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return ca_pem, cert_pem, key_pem


def _etag_listed(header: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag.removeprefix("W/") in tags


class _TLSServer(http.server.ThreadingHTTPServer):
    """TLS set up per connection, in that connection's thread. A listening socket wrapped
    for TLS runs every handshake inside ``accept()``, one at a time in the serving loop,
    and parallel clients (three ADDs of one build) then failed now and then with "tlsv1
    alert decode error"."""

    context: ssl.SSLContext

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client gave up or spoke no TLS: nothing to serve
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


class FileServer:
    """``FileServer(tmp, tls=True)``; ``resources[path] = Resource(...)``; ``url(path)``."""

    def __init__(self, where: Path, *, tls: bool = False) -> None:
        self.resources: dict[str, Resource] = {}
        self.recorder = Recorder()
        self.ca_pem: Path | None = None
        handler = self._handler_class()
        self.scheme = "http"
        if tls:
            self.ca_pem, cert, key = make_ca(where)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            tls_server = _TLSServer(("127.0.0.1", 0), handler)
            tls_server.context = context
            self.httpd: http.server.ThreadingHTTPServer = tls_server
            self.scheme = "https"
        else:
            self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    @property
    def requests(self) -> list[Request]:
        with self.recorder.lock:
            return list(self.recorder.requests)

    @property
    def bodies_sent(self) -> int:
        with self.recorder.lock:
            return self.recorder.bodies_sent

    def reset_counts(self) -> None:
        with self.recorder.lock:
            self.recorder.requests.clear()
            self.recorder.bodies_sent = 0

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _serve(self, *, body: bool) -> None:
                path = self.path.split("?", 1)[0]
                res = server.resources.get(path)
                inm = self.headers.get("If-None-Match")
                headers: dict[str, str]
                if res is None:
                    status, headers, payload = 404, {}, b"404 page not found\n"
                elif not body and res.head_status is not None:
                    status, headers, payload = res.head_status, {}, b""
                elif res.location is not None:
                    status = res.status if res.status != 200 else 302
                    headers, payload = {"Location": res.location}, b""
                elif res.etag is not None and inm is not None and _etag_listed(inm, res.etag):
                    status, headers, payload = 304, {"ETag": res.etag}, b""
                else:
                    status, payload = res.status, res.body
                    headers = {"Content-Type": res.content_type}
                    if res.etag is not None:
                        headers["ETag"] = res.etag
                    if res.last_modified is not None:
                        headers["Last-Modified"] = res.last_modified
                    if res.content_disposition is not None:
                        headers["Content-Disposition"] = res.content_disposition
                with server.recorder.lock:
                    server.recorder.requests.append(Request(
                        self.command, self.path, inm, self.headers.get("Authorization"),
                        status))
                    if body and status == 200:
                        server.recorder.bodies_sent += 1
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if status != 304:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if body and status != 304:
                    self.wfile.write(payload)

        return Handler
