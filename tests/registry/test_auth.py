"""Authentication against the real registry: htpasswd Basic, token auth, credential
helpers, docker config.json, and TLS host settings."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from buildkit_py.content import ContentStore
from buildkit_py.registry import (
    AuthenticationError,
    Credentials,
    CredentialsError,
    DockerConfigCredentials,
    RegistryClient,
    RegistryUnavailableError,
    StaticCredentials,
)
from buildkit_py.registry.auth import parse_challenges
from tests.registry.fixtures import (
    FAST_RETRY,
    HTPASSWD_SECRET,
    PASSWORD,
    USER,
    Proxy,
    RegistryServer,
    TokenServer,
    make_image,
    self_signed_tls,
)


@pytest.fixture
def basic_registry(
    tmp_path: Path, make_registry: Callable[..., RegistryServer]
) -> RegistryServer:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"{USER}:{HTPASSWD_SECRET}\n")
    return make_registry(auth={"htpasswd": {"realm": "test", "path": str(htpasswd)}})


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[TokenServer]:
    server = TokenServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def token_registry(
    token_server: TokenServer, make_registry: Callable[..., RegistryServer]
) -> RegistryServer:
    return make_registry(auth=token_server.registry_auth())


def _client(
    creds: dict[str, Credentials] | None = None, hosts: dict[str, Any] | None = None
) -> RegistryClient:
    return RegistryClient(hosts, StaticCredentials(creds or {}), retry=FAST_RETRY)


def test_basic_auth_push_and_pull_with_credentials(
    basic_registry: RegistryServer, store: ContentStore, other_store: ContentStore,
) -> None:
    image = make_image(store)
    ref = f"{basic_registry.host}/private/img:v1"
    with _client({basic_registry.host: Credentials(USER, PASSWORD)}) as client:
        client.push(ref, store, image.manifest)
        pulled = client.pull(ref, other_store, "linux/amd64")
    assert other_store.read(pulled.layers[0].digest) == store.read(image.layers[0].digest)


def test_basic_auth_without_credentials_is_a_plain_unauthorized_error(
    basic_registry: RegistryServer, store: ContentStore,
) -> None:
    ref = f"{basic_registry.host}/private/img:v1"
    with _client() as client, pytest.raises(AuthenticationError) as info:
        client.resolve(ref)
    assert info.value.message.startswith(f"unauthorized: pull {ref}: authentication required")
    assert info.value.hint == f"run `docker login {basic_registry.host}`"

    with _client({basic_registry.host: Credentials(USER, "wrong")}) as client:
        with pytest.raises(AuthenticationError) as info:
            client.push(ref, store, make_image(store).manifest)
    assert "rejected the credentials" in info.value.message


def test_token_auth_anonymous_pull_and_authenticated_push(
    token_registry: RegistryServer, token_server: TokenServer, store: ContentStore,
    other_store: ContentStore,
) -> None:
    image = make_image(store, layer_sizes=(1000, 2000, 3000))
    ref = f"{token_registry.host}/tok/img:v1"
    with _client() as anonymous, pytest.raises(AuthenticationError) as info:
        anonymous.push(ref, store, image.manifest)
    assert "authentication required" in info.value.message

    with _client({token_registry.host: Credentials(USER, PASSWORD)}) as client:
        client.push(ref, store, image.manifest)
    method, query, user = token_server.requests[-1]
    assert (method, user) == ("GET", USER)
    assert query["scope"] == ["repository:tok/img:pull,push"]
    assert query["service"] == ["test-registry"]
    assert query["account"] == [USER]
    # One token serves the whole push (HEADs, uploads, manifest).
    assert sum(1 for _, _, u in token_server.requests if u == USER) == 1

    token_server.requests.clear()
    with _client() as anonymous:
        pulled = anonymous.pull(ref, other_store, "linux/amd64")
    assert pulled.manifest.digest == image.manifest.digest
    assert len(token_server.requests) == 1
    assert token_server.requests[0][1]["scope"] == ["repository:tok/img:pull"]
    assert token_server.requests[0][2] is None


def test_token_auth_with_wrong_password_names_the_registry(
    token_registry: RegistryServer, store: ContentStore,
) -> None:
    with _client({token_registry.host: Credentials(USER, "nope")}) as client:
        with pytest.raises(AuthenticationError) as info:
            client.push(f"{token_registry.host}/tok/img:v1", store, make_image(store).manifest)
    assert token_registry.host in info.value.message
    assert "rejected" in info.value.message
    assert "docker login" in (info.value.hint or "")


def test_identity_token_is_exchanged_with_an_oauth_post(
    token_registry: RegistryServer, token_server: TokenServer, store: ContentStore,
    tmp_path: Path,
) -> None:
    token_server.refresh_tokens["refresh-123"] = USER
    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps(
        {"auths": {token_registry.host: {"identitytoken": "refresh-123"}}}
    ))
    image = make_image(store)
    with RegistryClient(credentials=DockerConfigCredentials(config_dir),
                        retry=FAST_RETRY) as client:
        client.push(f"{token_registry.host}/oauth/img:v1", store, image.manifest)
    method, form, _ = token_server.requests[-1]
    assert method == "POST"
    assert form["grant_type"] == ["refresh_token"]
    assert form["refresh_token"] == ["refresh-123"]
    assert form["scope"] == ["repository:oauth/img:pull,push"]
    assert form["service"] == ["test-registry"]


def test_cross_repo_mount_asks_for_pull_on_the_source_repository(
    token_registry: RegistryServer, token_server: TokenServer, store: ContentStore,
    make_proxy: Callable[[str], Proxy],
) -> None:
    image = make_image(store)
    creds = {token_registry.host: Credentials(USER, PASSWORD)}
    with _client(creds) as client:
        client.push(f"{token_registry.host}/src/base:v1", store, image.manifest)
    proxy = make_proxy(token_registry.host)
    creds[proxy.host] = creds[token_registry.host]
    with _client(creds) as client:
        client.push(f"{proxy.host}/dst/app:v1", store, image.manifest,
                    mount_from={d.digest: "src/base" for d in image.layers})
    assert token_server.requests[-1][1]["scope"] == [
        "repository:dst/app:pull,push", "repository:src/base:pull"
    ]
    assert [p for m, p in proxy.requests if m == "PATCH"] == []
    assert sum("mount=" in p for m, p in proxy.requests if m == "POST") == len(image.layers)


def _write_helper(bin_dir: Path, name: str, server: str, user: str, secret: str) -> None:
    script = bin_dir / f"docker-credential-{name}"
    script.write_text(
        "#!/bin/sh\n"
        '[ "$1" = get ] || exit 2\n'
        "read -r url\n"
        f'if [ "$url" = "{server}" ]; then\n'
        f'  printf \'{{"ServerURL":"%s","Username":"{user}","Secret":"{secret}"}}\' "$url"\n'
        "else\n"
        "  echo 'credentials not found in native keychain'; exit 1\n"
        "fi\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


@pytest.mark.parametrize("kind", ["credHelpers", "credsStore"])
def test_credential_helper_supplies_credentials(
    kind: str, basic_registry: RegistryServer, store: ContentStore, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _write_helper(bin_dir, "test", basic_registry.host, USER, PASSWORD)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    config = ({"credHelpers": {basic_registry.host: "test"}} if kind == "credHelpers"
              else {"credsStore": "test"})
    (config_dir / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))

    image = make_image(store)
    with RegistryClient(retry=FAST_RETRY) as client:  # default: docker config.json
        client.push(f"{basic_registry.host}/helped/img:v1", store, image.manifest)
        desc, _ = client.resolve(f"{basic_registry.host}/helped/img:v1")
    assert desc.digest == image.manifest.digest

    creds = DockerConfigCredentials()
    assert creds.get("other.example:5000") is None  # "credentials not found" -> anonymous


def test_failing_or_missing_credential_helper_is_a_plain_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "absent-helper"}))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CredentialsError) as info:
        DockerConfigCredentials(tmp_path).get("ghcr.io")
    assert "docker-credential-absent-helper not found" in info.value.message

    script = tmp_path / "docker-credential-broken"
    script.write_text("#!/bin/sh\necho 'keychain locked' >&2\nexit 3\n")
    script.chmod(0o755)
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "broken"}))
    with pytest.raises(CredentialsError) as info:
        DockerConfigCredentials(tmp_path).get("ghcr.io")
    assert "keychain locked" in info.value.message


def test_docker_config_auths_entries(tmp_path: Path) -> None:
    encoded = base64.b64encode(b"bob:pa:ss").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": encoded},
        "http://localhost:5000": {"username": "u", "password": "p"},
        "ghcr.io": {"identitytoken": "refresh"},
        "quay.io": {"registrytoken": "static"},
        "empty.example": {},
    }}))
    creds = DockerConfigCredentials(tmp_path)
    assert creds.get("docker.io") == Credentials("bob", "pa:ss")
    assert creds.get("registry-1.docker.io") == Credentials("bob", "pa:ss")
    assert creds.get("localhost:5000") == Credentials("u", "p")
    assert creds.get("ghcr.io") == Credentials(identity_token="refresh")
    assert creds.get("quay.io") == Credentials(registry_token="static")
    assert creds.get("empty.example") is None
    assert creds.get("unknown.example") is None
    assert "pa:ss" not in repr(creds.get("docker.io"))


def test_missing_docker_config_means_anonymous_and_bad_json_is_an_error(
    tmp_path: Path,
) -> None:
    assert DockerConfigCredentials(tmp_path / "nowhere").get("docker.io") is None
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CredentialsError) as info:
        DockerConfigCredentials(tmp_path).get("docker.io")
    assert "config.json is not valid JSON" in info.value.message


def test_www_authenticate_challenges_parse() -> None:
    [bearer] = parse_challenges([
        'Bearer realm="https://auth.example/token",service="reg.example",'
        'scope="repository:a/b:pull,push",error="insufficient_scope"'
    ])
    assert bearer.scheme == "bearer"
    assert bearer.params == {
        "realm": "https://auth.example/token", "service": "reg.example",
        "scope": "repository:a/b:pull,push", "error": "insufficient_scope",
    }
    basic, second = parse_challenges(['Basic realm="x y", Bearer realm=tok, service="s\\"q"'])
    assert (basic.scheme, basic.params) == ("basic", {"realm": "x y"})
    assert (second.scheme, second.params) == ("bearer", {"realm": "tok", "service": 's"q'})


def test_tls_registry_with_a_configured_ca(
    tmp_path: Path, make_registry: Callable[..., RegistryServer], store: ContentStore,
) -> None:
    cert, key = self_signed_tls(tmp_path)
    server = make_registry(tls=(cert, key))
    ref = f"{server.host}/tls/img:v1"
    image = make_image(store)
    with _client(hosts={server.host: {"http": False, "ca": [str(cert)]}}) as client:
        client.push(ref, store, image.manifest)
    with _client(hosts={server.host: {"http": False, "insecure": True}}) as client:
        assert client.resolve(ref)[0].digest == image.manifest.digest
    with _client(hosts={server.host: {"http": True, "insecure": True}}) as client:
        assert client.resolve(ref)[0].digest == image.manifest.digest  # HTTPS tried first
    with _client(hosts={server.host: {"http": False}}) as client:
        with pytest.raises(RegistryUnavailableError) as info:
            client.resolve(ref)
    assert "CERTIFICATE_VERIFY_FAILED" in info.value.message


def test_http_and_insecure_fall_back_to_plain_http(
    registry: RegistryServer, store: ContentStore, caplog: pytest.LogCaptureFixture,
) -> None:
    image = make_image(store)
    ref = f"{registry.host}/fallback/img:v1"
    caplog.set_level(logging.INFO, logger="buildkit_py.registry")
    with _client(hosts={registry.host: {"http": True, "insecure": True}}) as client:
        client.push(ref, store, image.manifest)
        assert client.resolve(ref)[0].digest == image.manifest.digest
    fallbacks = [r for r in caplog.records if "falling back to HTTP" in r.getMessage()]
    assert len(fallbacks) == 1  # remembered per host after the first failure


def test_expired_tokens_are_fetched_again(
    token_registry: RegistryServer, token_server: TokenServer, store: ContentStore,
) -> None:
    token_server.lifetime = 1
    image = make_image(store)
    ref = f"{token_registry.host}/expiry/img:v1"
    with _client({token_registry.host: Credentials(USER, PASSWORD)}) as client:
        client.push(ref, store, image.manifest)
        client.resolve(ref)
        assert len(token_server.requests) == 2  # pull,push for the push; pull to resolve
        client.resolve(ref)
        assert len(token_server.requests) == 2  # cached
        time.sleep(1.0)
        client.resolve(ref)
        assert len(token_server.requests) == 3
