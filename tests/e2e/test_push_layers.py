"""A pushed layer larger than one deflate block: one valid gzip stream that skopeo and
umoci accept, and the same blob (no second deflate) when the image is pushed again."""

from __future__ import annotations

import hashlib
import json
import subprocess
import zlib
from pathlib import Path

import pytest

from tests.e2e.conftest import Bkpy, make_runner
from tests.registry.fixtures import RegistryServer

MiB = 1 << 20

# 6 MiB of random bytes and 6 MiB of zeros: several 1 MiB deflate blocks of each kind.
DOCKERFILE = """\
FROM busybox
COPY payload.bin /payload.bin
RUN dd if=/dev/zero of=/zeros bs=1048576 count=6 2>/dev/null
"""


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    c = tmp_path / "ctx"
    c.mkdir()
    (c / "Dockerfile").write_text(DOCKERFILE)
    # deterministic, incompressible bytes: the digest of a sha256 chain
    block = hashlib.sha256(b"seed").digest()
    parts = []
    for _ in range(6 * MiB // len(block)):
        block = hashlib.sha256(block).digest()
        parts.append(block)
    (c / "payload.bin").write_bytes(b"".join(parts))
    return c


def _skopeo(*args: str) -> str:
    p = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


def _pushed(bkpy: Bkpy, ctx: Path, ref: str, meta: Path) -> dict[str, object]:
    bkpy("build", "--metadata-file", str(meta), "-t", ref, "--push", str(ctx))
    return json.loads(meta.read_text())


def test_pushed_large_layer_is_one_gzip_stream_skopeo_and_umoci_accept(
    fresh_bkpy: Bkpy, ctx: Path, tmp_path: Path, registry: RegistryServer,
) -> None:
    ref = f"{registry.host}/push/large:1"
    first = _pushed(fresh_bkpy, ctx, ref, tmp_path / "meta1.json")
    dest = tmp_path / "copied"
    _skopeo("copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{dest}:x")
    index = json.loads((dest / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads((dest / "blobs" / "sha256" / manifest_digest).read_text())
    sizes = []
    for layer in manifest["layers"]:
        assert layer["mediaType"].endswith("+gzip")
        blob = (dest / "blobs" / "sha256" / layer["digest"].split(":", 1)[1]).read_bytes()
        z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        plain = z.decompress(blob) + z.flush()
        assert z.eof and z.unused_data == b""  # one gzip member, nothing after it
        sizes.append(len(plain))
    assert max(sizes) > 6 * MiB

    bundle = tmp_path / "bundle"
    p = subprocess.run(["umoci", "unpack", "--image", f"{dest}:x", str(bundle)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    rootfs = bundle / "rootfs"
    assert (rootfs / "payload.bin").read_bytes() == (ctx / "payload.bin").read_bytes()
    assert (rootfs / "zeros").read_bytes() == bytes(6 * MiB)

    # pushed again elsewhere: the blobs remembered from the first push, byte for byte
    again = _pushed(fresh_bkpy, ctx, f"{registry.host}/push/again:1", tmp_path / "meta2.json")
    assert again["containerimage.digest"] == first["containerimage.digest"]


def test_same_build_in_two_roots_pushes_the_same_layer_digests(
    fresh_bkpy: Bkpy, tmp_path: Path, ctx: Path, busybox_layout: Path,
    registry: RegistryServer,
) -> None:
    other = make_runner(tmp_path / "other-state")
    other("image", "import", str(busybox_layout), "busybox:latest")
    layers = []
    for i, run in enumerate((fresh_bkpy, other)):
        ref = f"{registry.host}/push/repro{i}:1"
        run("build", "--build-arg", "SOURCE_DATE_EPOCH=1700000000",
            "-o", f"type=image,name={ref},push=true,rewrite-timestamp=true", str(ctx))
        raw = json.loads(_skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{ref}"))
        layers.append([layer["digest"] for layer in raw["layers"]])
    assert layers[0] == layers[1]
