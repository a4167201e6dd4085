"""Test servers for the registry client: the real distribution registry, a token server
and a fault-injecting HTTP proxy. Importable by other test directories that need a registry.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from buildkit_py.content import ContentStore
from buildkit_py.platforms import Platform
from buildkit_py.registry import mediatypes as mt
from buildkit_py.registry.descriptor import Descriptor
from buildkit_py.registry.transport import RetryPolicy

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
# bcrypt (cost 4, the minimum, to keep the registry fast) of the password "secret".
HTPASSWD_SECRET = "$2b$04$uYiHMK19iiVVRZH75jSEp.fu5wcZr2LW6qpDjsD3w4s8gxAYqK2GC"
USER = "alice"
# Retries without long waits, so fault-injection tests stay fast.
FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)
PASSWORD = "secret"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes] | None, timeout: float = 15.0,
               **kw: Any) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1.0, **kw)
            return
        except httpx.HTTPError:
            time.sleep(0.03)
    raise RuntimeError(f"server at {url} did not start")


class RegistryServer:
    """``docker-registry serve`` on 127.0.0.1 with storage in ``root``."""

    def __init__(self, root: Path, auth: dict[str, Any] | None = None,
                 tls: tuple[Path, Path] | None = None) -> None:
        self.root = root
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.storage = root / "storage"
        http_conf: dict[str, Any] = {"addr": self.host, "secret": uuid.uuid4().hex}
        if tls is not None:
            http_conf["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
            },
            "http": http_conf,
        }
        if auth:
            config["auth"] = auth
        self.config_path = root / "config.yml"
        # JSON is valid YAML.
        self.config_path.write_text(json.dumps(config))
        self.log_path = root / "registry.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [REGISTRY_BIN, "serve", str(self.config_path)],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        scheme = "https" if tls else "http"
        try:
            _wait_http(f"{scheme}://{self.host}/v2/", self.proc, verify=False)
        except RuntimeError:
            self.stop()
            raise RuntimeError(
                f"registry failed to start: {self.log_path.read_text(errors='replace')}"
            ) from None

    def blob_data_path(self, digest: str) -> Path:
        hexpart = digest.partition(":")[2]
        return (self.storage / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart
                / "data")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# --- token server -----------------------------------------------------------------------


@dataclass
class TokenServer:
    """A Docker token-auth server: HTTP Basic GET and OAuth2 refresh-token POST.

    Signs RS256 JWTs with a self-signed certificate that the registry trusts
    (``rootcertbundle``); the token's ``x5c`` header carries that certificate.
    """

    root: Path
    service: str = "test-registry"
    issuer: str = "test-issuer"
    users: dict[str, str] = field(default_factory=lambda: {USER: PASSWORD})
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # token -> user
    anonymous_pull: bool = True
    lifetime: int = 300
    requests: list[tuple[str, dict[str, list[str]], str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test token signer")])
        now = time.time()
        import datetime as dt

        cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(dt.datetime.fromtimestamp(now - 3600, dt.UTC))
            .not_valid_after(dt.datetime.fromtimestamp(now + 86400, dt.UTC))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_path = self.root / "token-cert.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._cert_der_b64 = base64.b64encode(cert.public_bytes(serialization.Encoding.DER))
        self.port = free_port()
        self.realm = f"http://127.0.0.1:{self.port}/token"
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                user = server._basic_user(self.headers.get("Authorization"))
                server.requests.append(("GET", query, user))
                if user == "":  # wrong password
                    self._reply(401, {"details": "bad credentials"})
                    return
                scopes = query.get("scope", [])
                self._reply(200, server._issue(user, scopes, "token"))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                server.requests.append(("POST", form, None))
                refresh = form.get("refresh_token", [""])[0]
                user = server.refresh_tokens.get(refresh)
                if form.get("grant_type") != ["refresh_token"] or user is None:
                    self._reply(401, {"error": "invalid_grant"})
                    return
                scopes = " ".join(form.get("scope", [])).split()
                self._reply(200, server._issue(user, scopes, "access_token"))

            def _reply(self, status: int, doc: dict[str, Any]) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    def registry_auth(self) -> dict[str, Any]:
        return {"token": {"realm": self.realm, "service": self.service, "issuer": self.issuer,
                          "rootcertbundle": str(self.cert_path)}}

    def _basic_user(self, header: str | None) -> str | None:
        """None: anonymous; "": wrong credentials; else the user name."""
        if not header or not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user if self.users.get(user) == password else ""

    def _issue(self, user: str | None, scopes: list[str], key: str) -> dict[str, Any]:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = [a for a in actions.split(",")
                       if user is not None or (self.anonymous_pull and a == "pull")]
            access.append({"type": kind, "name": name, "actions": allowed})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": user or "", "aud": self.service,
                  "exp": now + self.lifetime, "nbf": now - 10, "iat": now,
                  "jti": uuid.uuid4().hex, "access": access}
        return {key: self._sign(claims), "expires_in": self.lifetime}

    def _sign(self, claims: dict[str, Any]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._cert_der_b64.decode()]}
        signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(
            json.dumps(claims).encode())
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(signature)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def self_signed_tls(root: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = root / "tls-cert.pem", root / "tls-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


# --- fault-injecting proxy --------------------------------------------------------------

# A fault hook sees (method, path) and returns None to forward, an int status to answer
# with, "drop" to close the connection without an answer, or "cut" to forward but close
# the connection halfway through the response body.
FaultHook = Callable[[str, str], "int | str | None"]
# A body hook may rewrite a forwarded response body (method, path, body) -> body.
BodyHook = Callable[[str, str, bytes], bytes]

_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


def _read_chunked(rfile: Any) -> bytes:
    parts = []
    while True:
        size = int(rfile.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        parts.append(rfile.read(size))
        rfile.readline()


class Proxy:
    """An HTTP proxy in front of a registry that records requests and injects faults."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.requests: list[tuple[str, str]] = []
        self.fault: FaultHook | None = None
        self.body_hook: BodyHook | None = None
        self.request_body_hook: BodyHook | None = None  # changes what is sent upstream
        self.faults_served = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = _read_chunked(self.rfile)  # a body streamed with no length
                    length = len(body)
                else:
                    length = int(self.headers.get("Content-Length", "0") or "0")
                    body = self.rfile.read(length) if length else b""
                path = self.path
                if len(body) < length:  # the client gave up mid-body: forward nothing
                    with proxy._lock:
                        proxy.requests.append((f"{self.command}(cut)", path))
                    self.close_connection = True
                    return
                with proxy._lock:
                    proxy.requests.append((self.command, path))
                    fault = proxy.fault(self.command, path) if proxy.fault else None
                    if fault is not None:
                        proxy.faults_served += 1
                if proxy.request_body_hook is not None and body:
                    body = proxy.request_body_hook(self.command, path, body)
                if fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(fault, int):
                    self.send_response(fault)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() not in _HOP_HEADERS}
                    conn.request(self.command, path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    if proxy.body_hook is not None and self.command == "GET":
                        data = proxy.body_hook(self.command, path, data)
                    self.send_response(resp.status)
                    for k, v in resp.getheaders():
                        if k.lower() not in _HOP_HEADERS and k.lower() != "content-length":
                            self.send_header(k, v)
                    if self.command != "HEAD":
                        self.send_header("Content-Length", str(len(data)))
                    else:
                        self.send_header("Content-Length",
                                         resp.getheader("Content-Length") or "0")
                    self.end_headers()
                    if fault == "cut":
                        self.wfile.write(data[: len(data) // 2])
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                    elif self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    conn.close()

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    def methods(self, path_part: str = "") -> list[str]:
        return [m for m, p in self.requests if path_part in p]

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


# --- images ----------------------------------------------------------------------------


@dataclass
class BuiltImage:
    manifest: Descriptor
    config: Descriptor
    layers: list[Descriptor]

    @property
    def blobs(self) -> list[Descriptor]:
        return [self.config, *self.layers]


def make_image(store: ContentStore, *, layer_sizes: tuple[int, ...] = (3000, 5000),
               platform: Platform | None = None, docker_types: bool = False) -> BuiltImage:
    """An image of random gzip layers (incompressible, so sizes stay as asked)."""
    layers = []
    diff_ids = []
    layer_type = mt.DOCKER_LAYER_GZIP if docker_types else mt.OCI_LAYER_GZIP
    for size in layer_sizes:
        raw = os.urandom(size)
        blob = gzip.compress(raw, compresslevel=1, mtime=0)
        layers.append(Descriptor(layer_type, store.write(blob), len(blob)))
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    plat = platform or Platform("linux", "amd64")
    config = json.dumps({
        "architecture": plat.architecture, "os": plat.os,
        **({"variant": plat.variant} if plat.variant else {}),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {"Env": [f"NONCE={uuid.uuid4().hex}"]},
    }).encode()
    config_type = mt.DOCKER_CONFIG if docker_types else mt.OCI_CONFIG
    config_desc = Descriptor(config_type, store.write(config), len(config))
    manifest_type = mt.DOCKER_MANIFEST if docker_types else mt.OCI_MANIFEST
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": manifest_type, "config": config_desc.to_json(),
        "layers": [d.to_json() for d in layers],
    }).encode()
    manifest_desc = Descriptor(manifest_type, store.write(manifest), len(manifest), plat)
    return BuiltImage(manifest_desc, config_desc, layers)


def make_index(store: ContentStore, images: list[BuiltImage]) -> Descriptor:
    index = json.dumps({
        "schemaVersion": 2, "mediaType": mt.OCI_INDEX,
        "manifests": [img.manifest.to_json() for img in images],
    }).encode()
    return Descriptor(mt.OCI_INDEX, store.write(index), len(index))
