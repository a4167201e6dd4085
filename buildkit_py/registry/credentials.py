"""Registry credentials from docker's ``config.json`` and credential helpers.

Lookup per registry, like the docker CLI: ``credHelpers[host]`` -> ``credsStore`` -> ``auths``.
Docker Hub's key is ``https://index.docker.io/v1/``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from buildkit_py.registry.errors import CredentialsError
from buildkit_py.registry.reference import DEFAULT_DOMAIN, DOCKER_HUB_API_HOST

DOCKER_HUB_SERVER_URL = "https://index.docker.io/v1/"
HELPER_TIMEOUT = 60.0


@dataclass(frozen=True)
class Credentials:
    """What to authenticate with; an ``identity_token`` is an OAuth2 refresh token."""

    username: str = ""
    password: str = ""
    identity_token: str = ""
    registry_token: str = ""

    def __repr__(self) -> str:  # never print secrets
        return f"Credentials(username={self.username!r}, ...)"


class CredentialsProvider(Protocol):
    def get(self, registry: str) -> Credentials | None:
        """Credentials for a registry domain (``docker.io``, ``host:5000``), or None."""


class StaticCredentials:
    """Credentials from a mapping registry -> Credentials (tests, daemon sessions)."""

    def __init__(self, creds: Mapping[str, Credentials]) -> None:
        self._creds = {normalize_registry(k): v for k, v in creds.items()}

    def get(self, registry: str) -> Credentials | None:
        return self._creds.get(normalize_registry(registry))


def normalize_registry(key: str) -> str:
    """``https://index.docker.io/v1/`` -> ``docker.io``; ``http://h:5000/x`` -> ``h:5000``."""
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme):]
            break
    host = key.partition("/")[0].lower()
    if host in ("index.docker.io", DOCKER_HUB_API_HOST):
        return DEFAULT_DOMAIN
    return host


def server_url(registry: str) -> str:
    """The server URL docker stores credentials under for ``registry``."""
    return DOCKER_HUB_SERVER_URL if normalize_registry(registry) == DEFAULT_DOMAIN else registry


def default_config_dir() -> Path:
    env = os.environ.get("DOCKER_CONFIG")
    return Path(env) if env else Path.home() / ".docker"


class DockerConfigCredentials:
    """Reads ``$DOCKER_CONFIG/config.json`` (default ``~/.docker``) on first use; thread-safe."""

    def __init__(self, config_dir: str | os.PathLike[str] | None = None) -> None:
        self._dir = Path(config_dir) if config_dir is not None else None
        self._lock = threading.Lock()
        self._config: dict[str, Any] | None = None
        self._cache: dict[str, Credentials | None] = {}

    @property
    def path(self) -> Path:
        return (self._dir if self._dir is not None else default_config_dir()) / "config.json"

    def _load(self) -> dict[str, Any]:
        if self._config is None:
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                raw = b"{}"
            except OSError as err:
                raise CredentialsError(f"cannot read {self.path}: {err.strerror}") from None
            try:
                doc = json.loads(raw or b"{}")
            except (ValueError, UnicodeDecodeError) as err:
                raise CredentialsError(f"{self.path} is not valid JSON: {err}") from None
            self._config = doc if isinstance(doc, dict) else {}
        return self._config

    def get(self, registry: str) -> Credentials | None:
        key = normalize_registry(registry)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = self._lookup(key)
            return self._cache[key]

    def _lookup(self, registry: str) -> Credentials | None:
        config = self._load()
        helpers = config.get("credHelpers") or {}
        for name, helper in helpers.items():
            if normalize_registry(name) == registry and helper:
                return run_credential_helper(str(helper), server_url(registry))
        store = config.get("credsStore")
        if store:
            found = run_credential_helper(str(store), server_url(registry))
            if found is not None:
                return found
        for name, entry in (config.get("auths") or {}).items():
            if normalize_registry(name) == registry and isinstance(entry, dict):
                return _from_auth_entry(entry, name, self.path)
        return None


def _from_auth_entry(entry: Mapping[str, Any], name: str, path: Path) -> Credentials | None:
    username = str(entry.get("username") or "")
    password = str(entry.get("password") or "")
    auth = entry.get("auth")
    if auth:
        try:
            decoded = base64.b64decode(str(auth), validate=False).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialsError(f"invalid base64 'auth' for {name!r} in {path}") from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise CredentialsError(f"invalid 'auth' for {name!r} in {path}: expected user:password")
    creds = Credentials(
        username=username,
        password=password,
        identity_token=str(entry.get("identitytoken") or ""),
        registry_token=str(entry.get("registrytoken") or ""),
    )
    if creds == Credentials():
        return None
    return creds


def run_credential_helper(name: str, url: str) -> Credentials | None:
    """Run ``docker-credential-<name> get`` for ``url``; None when it has no credentials."""
    program = f"docker-credential-{name}"
    try:
        proc = subprocess.run(
            [program, "get"], input=url.encode(), capture_output=True, timeout=HELPER_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise CredentialsError(
            f"credential helper {program} not found (configured in docker config.json)",
            hint=f"install {program} or remove it from credsStore/credHelpers",
        ) from None
    except subprocess.TimeoutExpired:
        raise CredentialsError(f"credential helper {program} timed out") from None
    output = proc.stdout.decode(errors="replace").strip()
    if proc.returncode != 0:
        message = output or proc.stderr.decode(errors="replace").strip()
        if "credentials not found" in message.lower():
            return None
        raise CredentialsError(
            f"credential helper {program} failed for {url}: {message or f'exit {proc.returncode}'}"
        )
    try:
        doc = json.loads(output)
        username, secret = str(doc.get("Username", "")), str(doc.get("Secret", ""))
    except (ValueError, AttributeError):
        raise CredentialsError(f"credential helper {program} printed invalid JSON") from None
    if username == "<token>":
        return Credentials(identity_token=secret)
    if not username and not secret:
        return None
    return Credentials(username=username, password=secret)
