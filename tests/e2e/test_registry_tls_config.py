"""buildkitd.toml's ``[registry."host"]`` TLS settings through ``bkpy build``: a registry
that serves a private CA's certificate and asks for a client certificate is pushed to and
pulled from with ``ca`` and ``[[keypair]]``; without the keypair it refuses."""

from __future__ import annotations

import json
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.control.test_tls import _write_ca, _write_leaf
from tests.e2e.conftest import Bkpy, make_runner
from tests.registry.fixtures import REGISTRY_BIN, RegistryServer, _wait_http, free_port


@pytest.fixture
def mtls_registry(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """docker-registry on 127.0.0.1 with TLS from a private CA, client certificates
    required (``http.tls.clientcas``)."""
    pki = tmp_path / "pki"
    pki.mkdir()
    ca = _write_ca(pki / "ca.pem", "registry test CA")
    _write_leaf(ca, pki / "server", "registry", server=True)
    _write_leaf(ca, pki / "client", "builder", server=False)
    host = f"127.0.0.1:{free_port()}"
    config = tmp_path / "registry.yml"
    config.write_text(json.dumps({
        "version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "storage")}},
        "http": {"addr": host, "secret": uuid.uuid4().hex,
                 "tls": {"certificate": str(pki / "server.pem"), "key": str(pki / "server.key"),
                         "clientcas": [str(pki / "ca.pem")]}}}))
    with open(tmp_path / "registry.log", "wb") as log:
        proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        context.load_cert_chain(str(pki / "client.pem"), str(pki / "client.key"))
        _wait_http(f"https://{host}/v2/", proc, verify=context)
        yield host, pki
    finally:
        proc.terminate()
        proc.wait(10)


def _config(tmp_path: Path, host: str, pki: Path, keypair: bool) -> dict[str, str]:
    text = f'[registry."{host}"]\nca = ["{pki / "ca.pem"}"]\n'
    if keypair:
        text += (f'[[registry."{host}".keypair]]\ncert = "{pki / "client.pem"}"\n'
                 f'key = "{pki / "client.key"}"\n')
    path = tmp_path / f"buildkitd-{keypair}.toml"
    path.write_text(text)
    return {"BKPY_BUILDER_CONFIG": str(path)}


def test_push_and_pull_with_a_private_ca_and_a_client_certificate(
        fresh_bkpy: Bkpy, tmp_path: Path, mtls_registry: tuple[str, Path]) -> None:
    host, pki = mtls_registry
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo pushed > /marker\n")
    ref = f"{host}/app:1"

    refused = fresh_bkpy("build", "--progress", "plain", "-t", ref, "--push", str(ctx),
                         env=_config(tmp_path, host, pki, keypair=False), check=False)
    assert refused.code == 1, refused.err
    assert "Traceback" not in refused.err
    assert f"cannot reach registry {host}" in refused.err and "bad certificate" in refused.err

    fresh_bkpy("build", "--progress", "plain", "-t", ref, "--push", str(ctx),
               env=_config(tmp_path, host, pki, keypair=True))

    # an empty builder pulls it back over the same TLS (no busybox of its own)
    pull = make_runner(tmp_path / "other")
    app = tmp_path / "app"
    app.mkdir()
    (app / "Dockerfile").write_text(f"FROM {ref}\nRUN cat /marker > /copy\n")
    pull("build", "--progress", "plain", "-o", f"type=local,dest={tmp_path / 'out'}", str(app),
         env=_config(tmp_path, host, pki, keypair=True))
    assert (tmp_path / "out" / "copy").read_text() == "pushed\n"


def _push(bkpy: Bkpy, tmp_path: Path, ref: str, config: str) -> int:
    ctx = tmp_path / "push-ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo hi > /hi\n")
    path = tmp_path / f"config-{uuid.uuid4().hex[:8]}.toml"
    path.write_text(config)
    run = bkpy("build", "--progress", "plain", "-t", ref, "--push", str(ctx),
               env={"BKPY_BUILDER_CONFIG": str(path)}, check=False)
    assert "Traceback" not in run.err
    return run.code


def test_insecure_true_skips_certificate_checks(
        fresh_bkpy: Bkpy, tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    _write_leaf(_write_ca(pki / "ca.pem", "unknown CA"), pki / "server", "registry", server=True)
    (tmp_path / "reg").mkdir()
    server = RegistryServer(tmp_path / "reg", tls=(pki / "server.pem", pki / "server.key"))
    try:
        ref = f"{server.host}/app:insecure"
        # verified against a CA that did not sign it: refused; insecure: accepted
        _write_ca(pki / "other-ca.pem", "another CA")
        assert _push(fresh_bkpy, tmp_path, ref,
                     f'[registry."{server.host}"]\nca = ["{pki / "other-ca.pem"}"]\n') == 1
        assert _push(fresh_bkpy, tmp_path, ref,
                     f'[registry."{server.host}"]\ninsecure = true\n') == 0
    finally:
        server.stop()
