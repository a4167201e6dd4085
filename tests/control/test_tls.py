"""bkpyd on 127.0.0.1 TCP with mutual TLS: valid client certs build, others are refused."""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
import sys
from pathlib import Path

import pytest

from buildkit_py.api.tls import TLSFiles
from buildkit_py.client.remote import RemoteClient
from buildkit_py.errors import UserError
from tests.control.conftest import MakeDaemon, free_port, run_bkpy


def _write_ca(dest: Path, name: str) -> tuple[object, object]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    dest.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def _write_leaf(ca: tuple[object, object], dest: Path, name: str, *, server: bool) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(ca_cert.subject)  # type: ignore[attr-defined]
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=30))
               .add_extension(x509.ExtendedKeyUsage(
                   [ExtendedKeyUsageOID.SERVER_AUTH if server
                    else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    dest.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    dest.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    d = tmp_path / "pki"
    d.mkdir()
    ca = _write_ca(d / "ca.pem", "bkpy test CA")
    _write_leaf(ca, d / "server", "bkpyd", server=True)
    _write_leaf(ca, d / "client", "client", server=False)
    other = _write_ca(d / "other-ca.pem", "someone else")
    _write_leaf(other, d / "intruder", "intruder", server=False)
    return d


def test_mutual_tls_daemon_builds_for_a_valid_client_and_refuses_others(
        tmp_path: Path, make_daemon: MakeDaemon, pki: Path) -> None:
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    good = TLSFiles(cacert=str(pki / "ca.pem"), cert=str(pki / "client.pem"),
                    key=str(pki / "client.key"))
    make_daemon(args=["--addr", endpoint, "--tlscacert", str(pki / "ca.pem"),
                      "--tlscert", str(pki / "server.pem"), "--tlskey", str(pki / "server.key")],
                endpoint=endpoint, tls=good, busybox=False)

    for bad in (TLSFiles(cacert=str(pki / "ca.pem")),  # no client certificate
                TLSFiles(cacert=str(pki / "ca.pem"), cert=str(pki / "intruder.pem"),
                         key=str(pki / "intruder.key")),  # signed by another CA
                None):  # plain text
        client = RemoteClient(endpoint, bad)
        with pytest.raises(UserError):
            client.info(timeout=5)
        client.close()

    env = {"BKPY_CONFIG": str(tmp_path / "client"), "BKPY_ROOT": str(tmp_path / "emb")}
    run_bkpy("builder", "create", "--name", "tls", endpoint,  # the comma form of --driver-opt
             "--driver-opt", f"cacert={pki / 'ca.pem'},cert={pki / 'client.pem'},"
                             f"key={pki / 'client.key'}", env=env)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY busybox /bin/busybox\n")
    (ctx / "busybox").write_bytes(Path("/var/cache/bkpy-test/busybox-amd64").read_bytes())
    run_bkpy("build", "--builder", "tls", "--progress", "quiet",
             "-o", f"type=local,dest={tmp_path}/out", str(ctx), env=env)
    assert (tmp_path / "out" / "bin" / "busybox").stat().st_size == (ctx / "busybox").stat().st_size

    run_bkpy("builder", "create", "--name", "intruder", endpoint,
             "--driver-opt", f"cacert={pki / 'ca.pem'}",
             "--driver-opt", f"cert={pki / 'intruder.pem'}",
             "--driver-opt", f"key={pki / 'intruder.key'}", env=env)
    refused = run_bkpy("build", "--builder", "intruder", "--progress", "quiet", str(ctx),
                       env=env, check=False)
    assert refused.code == 1
    assert "cannot reach the builder daemon" in refused.err
    assert "Traceback" not in refused.err


def test_plain_tcp_on_a_public_address_needs_insecure_tcp(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "buildkit_py.control.daemon", "--root",
                        str(tmp_path / "root"), "--addr", "tcp://0.0.0.0:1"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert "--insecure-tcp" in p.stderr
    assert "Traceback" not in p.stderr


def test_plain_tcp_on_loopback_is_served_with_a_warning(tmp_path: Path,
                                                        make_daemon: MakeDaemon) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    d = make_daemon(args=["--addr", endpoint], endpoint=endpoint, busybox=False)
    client = RemoteClient(endpoint, None)
    client.info(timeout=10)
    client.close()
    log = d.log.read_text()
    assert f"{endpoint}: plain TCP, no TLS" in log and "WARNING" in log
