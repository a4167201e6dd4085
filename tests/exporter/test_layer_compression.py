"""Layers are gzip-compressed for the local image store (as in BuildKit's) and for what
leaves the builder (push, ``type=oci``/``type=docker``), or as the output asks, and blobs
and digests are reused between them."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import Bkpy
from tests.registry.fixtures import RegistryServer

OCI_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
EPOCH = {"SOURCE_DATE_EPOCH": "1700000000"}


def _local_manifest(bkpy: Bkpy, name: str) -> dict[str, Any]:
    out = bkpy("imagetools", "inspect", "--local", "--raw", name).out
    doc: dict[str, Any] = json.loads(out)
    return doc


def _layout_manifest(archive: Path) -> tuple[str, dict[str, Any], tarfile.TarFile]:
    tf = tarfile.open(archive)
    index = json.load(tf.extractfile("index.json"))  # type: ignore[arg-type]
    digest = index["manifests"][0]["digest"]
    blob = tf.extractfile("blobs/sha256/" + digest.split(":", 1)[1])
    assert blob is not None
    return digest, json.load(blob), tf


def _built_layers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The layers this build made (the busybox base layer comes first)."""
    layers: list[dict[str, Any]] = manifest["layers"][1:]
    assert len(layers) == 2
    return layers


def test_load_keeps_built_layers_gzip(bkpy: Bkpy, ctx: Path) -> None:
    bkpy("build", "-t", "store/plain:1", "--load", str(ctx))
    layers = _built_layers(_local_manifest(bkpy, "store/plain:1"))
    assert {la["mediaType"] for la in layers} == {OCI_GZIP}
    cfg = json.loads(bkpy("imagetools", "inspect", "--local", "--format",
                          "{{json .Image}}", "store/plain:1").out)
    # compressed: a blob's digest is not its diff ID
    assert not {la["digest"] for la in layers} & set(cfg["rootfs"]["diff_ids"])


def test_load_with_compression_uncompressed(bkpy: Bkpy, ctx: Path) -> None:
    bkpy("build", "-o", "type=image,name=store/raw:1,compression=uncompressed", str(ctx))
    layers = _built_layers(_local_manifest(bkpy, "store/raw:1"))
    assert {la["mediaType"] for la in layers} == {OCI_TAR}
    cfg = json.loads(bkpy("imagetools", "inspect", "--local", "--format",
                          "{{json .Image}}", "store/raw:1").out)
    # an uncompressed blob's digest is its diff ID
    assert [la["digest"] for la in layers] == cfg["rootfs"]["diff_ids"][1:]


def test_oci_export_is_gzip_or_the_requested_compression(bkpy: Bkpy, ctx: Path,
                                                         tmp_path: Path) -> None:
    gz, zst = tmp_path / "gz.tar", tmp_path / "zst.tar"
    bkpy("build", "-o", f"type=oci,dest={gz}", str(ctx))
    bkpy("build", "-o", f"type=oci,dest={zst},compression=zstd", str(ctx))
    _, m, tf = _layout_manifest(gz)
    assert {la["mediaType"] for la in _built_layers(m)} == {OCI_GZIP}
    for la in _built_layers(m):
        blob = tf.extractfile("blobs/sha256/" + la["digest"].split(":", 1)[1])
        assert blob is not None and blob.read(2) == b"\x1f\x8b"
    _, m, _ = _layout_manifest(zst)
    assert {la["mediaType"] for la in _built_layers(m)} == {OCI_ZSTD}


def test_load_and_oci_in_one_build_share_blobs(bkpy: Bkpy, ctx: Path,
                                               tmp_path: Path) -> None:
    out = tmp_path / "img.tar"
    bkpy("build", "-o", "type=image,name=store/both:1", "-o", f"type=oci,dest={out}", str(ctx))
    stored = _built_layers(_local_manifest(bkpy, "store/both:1"))
    _, m, _ = _layout_manifest(out)
    assert {la["mediaType"] for la in stored} == {OCI_GZIP}
    assert _built_layers(m) == stored  # compressed once, the same blobs in both


def test_reexport_gives_identical_digests(bkpy: Bkpy, ctx: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.tar", tmp_path / "b.tar"
    bkpy("build", "-o", f"type=oci,dest={a}", str(ctx), env=EPOCH)
    bkpy("build", "-o", f"type=oci,dest={b}", str(ctx), env=EPOCH)
    da, ma, _ = _layout_manifest(a)
    db, mb, _ = _layout_manifest(b)
    assert da == db
    assert ma == mb


def test_push_is_gzip_and_reuses_blobs(bkpy: Bkpy, ctx: Path, tmp_path: Path,
                                       registry: RegistryServer) -> None:
    ref = f"{registry.host}/exp/pushed:1"
    meta1, meta2 = tmp_path / "m1.json", tmp_path / "m2.json"
    out = tmp_path / "img.tar"
    bkpy("build", "-t", ref, "--push", "--metadata-file", str(meta1), str(ctx), env=EPOCH)
    bkpy("build", "-t", ref, "--push", "--metadata-file", str(meta2), str(ctx), env=EPOCH)
    bkpy("build", "-o", f"type=oci,dest={out}", str(ctx), env=EPOCH)
    digest = json.loads(meta1.read_text())["containerimage.digest"]
    assert json.loads(meta2.read_text())["containerimage.digest"] == digest
    oci_digest, oci_manifest, _ = _layout_manifest(out)
    assert oci_digest == digest  # push and type=oci share the gzip blobs
    r = httpx.get(f"http://{registry.host}/v2/exp/pushed/manifests/1",
                  headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    r.raise_for_status()
    pushed = r.json()
    assert {la["mediaType"] for la in _built_layers(pushed)} == {OCI_GZIP}
    assert pushed["layers"] == oci_manifest["layers"]
    for la in pushed["layers"]:
        blob = httpx.get(f"http://{registry.host}/v2/exp/pushed/blobs/{la['digest']}",
                         follow_redirects=True)
        assert blob.content[:2] == b"\x1f\x8b"


def test_loaded_image_works_as_from_base(bkpy: Bkpy, ctx: Path, tmp_path: Path,
                                         registry: RegistryServer) -> None:
    bkpy("build", "-t", "store/base:1", "--load", str(ctx))
    child = tmp_path / "child"
    child.mkdir()
    (child / "Dockerfile").write_text(
        "FROM store/base:1\nRUN cat /app.txt /sub/data | wc -c > /count\n")
    out = tmp_path / "out"
    bkpy("build", "-o", f"type=local,dest={out}", str(child))
    assert (out / "app.txt").read_text() == "app\n"
    assert (out / "sub" / "data").read_bytes() == b"x" * 100_000
    assert (out / "count").read_text().strip() == "100004"
    # pushing an image built on the uncompressed base compresses those layers too
    ref = f"{registry.host}/exp/child:1"
    bkpy("build", "-t", ref, "--push", str(child))
    r = httpx.get(f"http://{registry.host}/v2/exp/child/manifests/1",
                  headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    r.raise_for_status()
    assert {la["mediaType"] for la in r.json()["layers"][1:]} == {OCI_GZIP}
