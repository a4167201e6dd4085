"""Per-registry host configuration (http, TLS, mirrors) and the endpoints it yields."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from buildkit_py.errors import UsageError
from buildkit_py.registry.reference import DEFAULT_DOMAIN, DOCKER_HUB_API_HOST


@dataclass(frozen=True)
class RegistryHostConfig:
    """How to talk to one registry host (``[registry."host"]`` of the builder config).

    ``http``: plain HTTP (None = automatic: only for localhost/loopback IPs without
    ``ca`` or ``keypairs``);
    ``insecure``: HTTPS without certificate checks (with ``http`` too: HTTPS first, then HTTP);
    ``ca``: extra CA bundle files; ``mirrors``: hosts (optionally with a path prefix) tried
    before this one for pulls; ``keypairs``: client certificates (cert, key files).
    """

    http: bool | None = None
    insecure: bool = False
    ca: tuple[str, ...] = ()
    mirrors: tuple[str, ...] = ()
    # (cert, key) files of client certificates offered to the registry
    keypairs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RegistryHostConfig:
        unknown = set(data) - {"http", "insecure", "ca", "mirrors", "keypair"}
        if unknown:
            raise UsageError(f"unknown registry host option(s): {', '.join(sorted(unknown))}")

        def strings(key: str) -> tuple[str, ...]:
            value = data.get(key) or ()
            if isinstance(value, str):
                value = (value,)
            if not all(isinstance(v, str) for v in value):
                raise UsageError(f"registry option {key!r} must be a list of strings")
            return tuple(value)

        http = data.get("http")
        return cls(
            http=None if http is None else bool(http),
            insecure=bool(data.get("insecure", False)),
            ca=strings("ca"),
            mirrors=strings("mirrors"),
            keypairs=tuple((str(k.get("cert", "")), str(k.get("key", "")))
                           for k in data.get("keypair") or ()),
        )


HostsConfig = Mapping[str, "RegistryHostConfig | Mapping[str, Any]"]


@dataclass(frozen=True)
class Endpoint:
    """One place to send API requests: ``<scheme>://<host>/v2/<prefix><repository>/…``."""

    host: str
    scheme: str
    prefix: str = ""  # mirror path prefix, with a trailing '/' when set
    verify_tls: bool = True
    ca: tuple[str, ...] = ()
    # With http and insecure both set: try HTTPS, fall back to HTTP on TLS/connect errors.
    http_fallback: bool = False
    is_mirror: bool = False
    config: RegistryHostConfig = field(default_factory=RegistryHostConfig)

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def repo_url(self, repository: str) -> str:
        return f"{self.base_url}/v2/{self.prefix}{repository}"

    def repo_path(self, repository: str) -> str:
        """The repository name as this endpoint sees it (for auth scopes)."""
        return self.prefix + repository

    def with_scheme(self, scheme: str) -> Endpoint:
        return Endpoint(
            self.host, scheme, self.prefix, self.verify_tls, self.ca, False, self.is_mirror,
            self.config,
        )


def is_loopback_host(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1, with or without a port."""
    name = host
    if name.startswith("["):
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class RegistryHosts:
    """Looks up host configs and turns a registry domain into endpoints to try in order."""

    def __init__(self, hosts: HostsConfig | None = None) -> None:
        self._configs: dict[str, RegistryHostConfig] = {}
        for name, cfg in (hosts or {}).items():
            conf = cfg if isinstance(cfg, RegistryHostConfig) else RegistryHostConfig.from_dict(cfg)
            self._configs[_canonical_host(name)] = conf

    def config(self, host: str) -> RegistryHostConfig:
        return self._configs.get(_canonical_host(host), RegistryHostConfig())

    def endpoint(self, host: str, *, prefix: str = "", is_mirror: bool = False) -> Endpoint:
        """The endpoint of ``host`` (a reference domain, mirror host or token realm host)."""
        cfg = self.config(host)
        api_host = DOCKER_HUB_API_HOST if host == DEFAULT_DOMAIN else host
        # automatic: plain HTTP on loopback, unless a CA or client certificate says TLS,
        # or insecure does (then HTTPS unverified first, HTTP if that fails)
        auto = cfg.http is None
        http = cfg.http if not auto else (
            is_loopback_host(api_host) and not cfg.ca and not cfg.keypairs)
        fallback = bool(http and cfg.insecure)
        scheme = "https" if fallback or not http else "http"
        return Endpoint(
            host=api_host,
            scheme=scheme,
            prefix=prefix,
            verify_tls=not cfg.insecure,
            ca=cfg.ca,
            http_fallback=fallback,
            is_mirror=is_mirror,
            config=cfg,
        )

    def pull_endpoints(self, domain: str) -> list[Endpoint]:
        """Mirrors of ``domain`` in order, then ``domain`` itself."""
        out = []
        for mirror in self.config(domain).mirrors:
            host, _, prefix = _strip_scheme(mirror).partition("/")
            prefix = prefix.strip("/")
            endpoint = self.endpoint(host, prefix=prefix + "/" if prefix else "", is_mirror=True)
            # An explicit scheme on the mirror wins over the host's settings.
            if mirror.startswith(("http://", "https://")):
                endpoint = endpoint.with_scheme(mirror.partition(":")[0])
            out.append(endpoint)
        out.append(self.endpoint(domain))
        return out

    def push_endpoint(self, domain: str) -> Endpoint:
        """Pushes always go to the registry itself, never to a mirror."""
        return self.endpoint(domain)


def _strip_scheme(host: str) -> str:
    for scheme in ("https://", "http://"):
        if host.startswith(scheme):
            return host[len(scheme):]
    return host


def _canonical_host(host: str) -> str:
    host = _strip_scheme(host).partition("/")[0]
    if host in ("index.docker.io", DOCKER_HUB_API_HOST):
        return DEFAULT_DOMAIN
    return host
