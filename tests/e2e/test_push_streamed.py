"""A pushed image's new layers go to the registry while they are compressed (one PATCH fed
as deflate produces the bytes, then the PUT with the digest), so the push step after the
export only finds them there; when the registry refuses that upload, the push uploads the
blob from the content store as before. Real registry behind a recording proxy, real
``bkpy``, skopeo checks every blob's digest."""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.e2e.conftest import Bkpy
from tests.registry.fixtures import Proxy, RegistryServer

MiB = 1 << 20

DOCKERFILE = """\
FROM busybox
COPY payload.bin /payload.bin
RUN head -c 3000000 /payload.bin > /copy.bin
"""


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    c = tmp_path / "ctx"
    c.mkdir()
    (c / "Dockerfile").write_text(DOCKERFILE)
    block = hashlib.sha256(str(tmp_path).encode()).digest()  # layers unique to each test
    parts = []
    for _ in range(5 * MiB // len(block)):
        block = hashlib.sha256(block).digest()
        parts.append(block)
    (c / "payload.bin").write_bytes(b"".join(parts))
    return c


def _verified_copy(ref: str, dest: Path) -> dict[str, object]:
    """skopeo copies the image out, checking every blob against its digest."""
    p = subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}",
                        f"oci:{dest}:x"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    index = json.loads((dest / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest: dict[str, object] = json.loads((dest / "blobs/sha256" / digest).read_text())
    return manifest


def _uploads_of(proxy: Proxy, digest: str) -> list[str]:
    return [m for m, p in proxy.requests if m == "PUT" and f"digest={digest}" in unquote(p)]


def test_new_layers_are_uploaded_while_compressed(fresh_bkpy: Bkpy, ctx: Path, proxy: Proxy,
                                                  registry: RegistryServer,
                                                  tmp_path: Path) -> None:
    ref = f"{proxy.host}/streamed/app:1"
    fresh_bkpy("build", "-t", ref, "--push", str(ctx))
    manifest = _verified_copy(f"{registry.host}/streamed/app:1", tmp_path / "copy")
    layers = manifest["layers"]
    assert isinstance(layers, list) and len(layers) == 3
    patches = [p for m, p in proxy.requests if m == "PATCH" and "/blobs/uploads/" in p]
    assert len(patches) == 2, proxy.requests  # the two new layers, streamed
    for layer in layers[1:]:  # each new layer is committed once, by its streamed upload
        assert _uploads_of(proxy, layer["digest"]) == ["PUT"], proxy.requests
        assert layer["size"] > 3_000_000


def test_a_refused_streamed_upload_falls_back_to_the_push(fresh_bkpy: Bkpy, ctx: Path,
                                                          proxy: Proxy, registry: RegistryServer,
                                                          tmp_path: Path) -> None:
    proxy.fault = lambda method, path: 500 if method == "PATCH" else None
    ref = f"{proxy.host}/streamed/refused:1"
    fresh_bkpy("build", "-t", ref, "--push", str(ctx))
    assert proxy.faults_served == 2  # both streamed uploads were tried and refused
    manifest = _verified_copy(f"{registry.host}/streamed/refused:1", tmp_path / "copy")
    layers = manifest["layers"]
    assert isinstance(layers, list)
    for layer in layers[1:]:
        # abandoned (DELETE) once, then uploaded whole from the content store
        assert _uploads_of(proxy, layer["digest"]) == ["PUT"], proxy.requests
    deletes = [p for m, p in proxy.requests if m == "DELETE" and "/blobs/uploads/" in p]
    assert len(deletes) == 2, proxy.requests


def test_a_registry_that_rejects_the_digest_gets_the_blob_from_the_store(
        fresh_bkpy: Bkpy, ctx: Path, proxy: Proxy, registry: RegistryServer,
        tmp_path: Path) -> None:
    # the proxy flips a bit of every streamed body: the registry's own hash check refuses
    # the commit, and the push uploads the store's bytes instead
    def flip(method: str, path: str, body: bytes) -> bytes:
        return body[:-1] + bytes([body[-1] ^ 1]) if method == "PATCH" else body

    proxy.request_body_hook = flip
    ref = f"{proxy.host}/streamed/mangled:1"
    fresh_bkpy("build", "-t", ref, "--push", str(ctx))
    manifest = _verified_copy(f"{registry.host}/streamed/mangled:1", tmp_path / "copy")
    layers = manifest["layers"]
    assert isinstance(layers, list)
    for layer in layers[1:]:
        # the streamed commit was refused, then the push committed the store's bytes
        assert _uploads_of(proxy, layer["digest"]) == ["PUT", "PUT"], proxy.requests


def test_a_loaded_image_is_pushed_without_compressing_again(
        fresh_bkpy: Bkpy, ctx: Path, proxy: Proxy, registry: RegistryServer,
        tmp_path: Path) -> None:
    # --load compressed the layers for the local store; the push of the same build
    # finds those blobs and only uploads them (nothing streamed while being made)
    fresh_bkpy("build", "-t", "loaded/app:1", "--load", str(ctx))
    raw = fresh_bkpy("imagetools", "inspect", "--local", "--raw", "loaded/app:1").out
    local = json.loads(raw)
    ref = f"{proxy.host}/streamed/loaded:1"
    meta = tmp_path / "meta.json"
    fresh_bkpy("build", "-t", ref, "--push", "--metadata-file", str(meta), str(ctx))
    assert not [p for m, p in proxy.requests if m == "PATCH"], proxy.requests
    # the same manifest as the loaded one, byte for byte
    pushed_digest = json.loads(meta.read_text())["containerimage.digest"]
    assert pushed_digest == "sha256:" + hashlib.sha256(raw.encode()).hexdigest()
    manifest = _verified_copy(f"{registry.host}/streamed/loaded:1", tmp_path / "copy")
    assert manifest["layers"] == local["layers"]
    layers = manifest["layers"]
    assert isinstance(layers, list)
    for layer in layers[1:]:
        assert _uploads_of(proxy, layer["digest"]) == ["PUT"], proxy.requests


def test_the_platforms_of_a_multi_platform_push_compress_and_stream_at_once(
        fresh_bkpy: Bkpy, tmp_path: Path, proxy: Proxy, registry: RegistryServer) -> None:
    # each platform has a new layer of its own; the proxy holds the first streamed body
    # until the second arrives: one export of all platforms' layers meets it, one
    # platform after the other (the second starting once the first is committed) does not
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM scratch\nARG TARGETARCH\nCOPY payload-${TARGETARCH}.bin /payload.bin\n")
    for arch in ("amd64", "arm64"):
        block = hashlib.sha256(f"{tmp_path}{arch}".encode()).digest()
        parts = []
        for _ in range(2 * MiB // len(block)):
            block = hashlib.sha256(block).digest()
            parts.append(block)
        (ctx / f"payload-{arch}.bin").write_bytes(b"".join(parts))
    both = threading.Barrier(2, timeout=20)
    met: list[bool] = []

    def meet(method: str, path: str, body: bytes) -> bytes:
        if method == "PATCH":
            try:
                both.wait()
                met.append(True)
            except threading.BrokenBarrierError:
                met.append(False)
        return body

    proxy.request_body_hook = meet
    ref = f"{proxy.host}/streamed/platforms:1"
    fresh_bkpy("build", "--platform", "linux/amd64,linux/arm64", "-t", ref, "--push",
               str(ctx))
    assert met == [True, True], proxy.requests
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                          f"docker://{registry.host}/streamed/platforms:1"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    manifests = json.loads(raw)["manifests"]
    assert sorted(m["platform"]["architecture"] for m in manifests) == ["amd64", "arm64"]
    for m in manifests:
        manifest = _verified_copy(f"{registry.host}/streamed/platforms@{m['digest']}",
                                  tmp_path / m["platform"]["architecture"])
        layers = manifest["layers"]
        assert isinstance(layers, list) and len(layers) == 1
        # committed once, by its streamed upload
        assert _uploads_of(proxy, layers[0]["digest"]) == ["PUT"], proxy.requests


def test_a_refused_upload_session_leaves_the_layers_to_the_push(
        fresh_bkpy: Bkpy, ctx: Path, proxy: Proxy, registry: RegistryServer,
        tmp_path: Path) -> None:
    # the streamed uploads start their sessions while deflate runs; the registry refuses
    # both (the push's own sessions later are accepted): nothing is streamed, nothing
    # waits, and the push uploads each layer from the content store
    refused: list[str] = []

    def refuse_first_two(method: str, path: str) -> int | None:
        if method == "POST" and path.endswith("/blobs/uploads/") and len(refused) < 2:
            refused.append(path)
            return 500
        return None

    proxy.fault = refuse_first_two
    ref = f"{proxy.host}/streamed/no-session:1"
    fresh_bkpy("build", "-t", ref, "--push", str(ctx))
    assert proxy.faults_served == 2
    assert not [p for m, p in proxy.requests if m == "PATCH"], proxy.requests
    manifest = _verified_copy(f"{registry.host}/streamed/no-session:1", tmp_path / "copy")
    layers = manifest["layers"]
    assert isinstance(layers, list)
    for layer in layers[1:]:
        assert _uploads_of(proxy, layer["digest"]) == ["PUT"], proxy.requests
