"""Images in and out through ``bkpy build``, with skopeo, umoci and a real registry as referees."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.e2e.conftest import Bkpy
from tests.registry.fixtures import RegistryServer

DOCKERFILE = """\
FROM busybox
ARG TARGETARCH
RUN echo "$TARGETARCH $(uname -m)" > /arch
COPY app.txt /app.txt
CMD ["cat", "/arch"]
"""


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    c = tmp_path / "ctx"
    c.mkdir()
    (c / "Dockerfile").write_text(DOCKERFILE)
    (c / "app.txt").write_text("app\n")
    return c


def _skopeo(*args: str) -> str:
    p = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_oci_archive_opens_with_skopeo_and_umoci(bkpy: Bkpy, ctx: Path, tmp_path: Path) -> None:
    out = tmp_path / "img.tar"
    bkpy("build", "-t", "demo:1", "-o", f"type=oci,dest={out}", str(ctx))
    info = json.loads(_skopeo("inspect", f"oci-archive:{out}"))
    assert info["Architecture"] == "amd64"
    assert len(info["Layers"]) == 3  # busybox, RUN, COPY
    layout = tmp_path / "layout"
    layout.mkdir()
    with tarfile.open(out) as tf:
        tf.extractall(layout)
    index = json.loads((layout / "index.json").read_text())
    tag = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
    assert tag == "1"
    bundle = tmp_path / "bundle"
    p = subprocess.run(["umoci", "unpack", "--image", f"{layout}:{tag}", str(bundle)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert (bundle / "rootfs" / "arch").read_text() == "amd64 x86_64\n"
    assert (bundle / "rootfs" / "app.txt").read_text() == "app\n"


def test_docker_tarball_has_manifest_json(bkpy: Bkpy, ctx: Path, tmp_path: Path) -> None:
    out = tmp_path / "docker.tar"
    bkpy("build", "-t", "demo:2", "-o", f"type=docker,dest={out}", str(ctx))
    with tarfile.open(out) as tf:
        manifest = json.loads(tf.extractfile("manifest.json").read())  # type: ignore[union-attr]
        names = set(tf.getnames())
    assert manifest[0]["RepoTags"] == ["demo:2"]
    assert manifest[0]["Config"] in names
    assert all(layer in names for layer in manifest[0]["Layers"])
    info = json.loads(_skopeo("inspect", f"docker-archive:{out}"))
    assert info["Architecture"] == "amd64"


def test_layout_names_are_normalized_one_entry_each(bkpy: Bkpy, ctx: Path,
                                                     tmp_path: Path) -> None:
    # as the newest BuildKit writes them (recorded from the referee for the same names)
    oci, docker, md = tmp_path / "n.tar", tmp_path / "d.tar", tmp_path / "md.json"
    bkpy("build", "-o", f'type=oci,dest={oci},"name=foo,bar:v1"', "--metadata-file", str(md),
         str(ctx))
    with tarfile.open(oci) as tf:
        index = json.loads(tf.extractfile("index.json").read())  # type: ignore[union-attr]
    entries = index["manifests"]
    assert [e["annotations"] for e in entries] == [
        {"io.containerd.image.name": "docker.io/library/foo:latest",
         "org.opencontainers.image.ref.name": "latest"},
        {"io.containerd.image.name": "docker.io/library/bar:v1",
         "org.opencontainers.image.ref.name": "v1"}]
    assert len({e["digest"] for e in entries}) == 1
    assert json.loads(md.read_text())["image.name"] == \
        "docker.io/library/foo:latest,docker.io/library/bar:v1"
    bkpy("build", "-o", f'type=docker,dest={docker},"name=foo,bar:v1,reg.io/x/y:2"', str(ctx))
    with tarfile.open(docker) as tf:
        manifest = json.loads(tf.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest[0]["RepoTags"] == ["foo:latest", "bar:v1", "reg.io/x/y:2"]
    info = json.loads(_skopeo("inspect", f"docker-archive:{docker}"))
    assert info["Architecture"] == "amd64"


def test_reproducible_with_source_date_epoch(bkpy: Bkpy, fresh_bkpy: Bkpy, ctx: Path,
                                             tmp_path: Path) -> None:
    digests = []
    for i, run in enumerate((bkpy, fresh_bkpy)):
        meta = tmp_path / f"meta{i}.json"
        run("build", "--no-cache", "--build-arg", "SOURCE_DATE_EPOCH=1700000000",
            "--metadata-file", str(meta),
            "-o", f"type=oci,dest={tmp_path / f'r{i}.tar'},rewrite-timestamp=true", str(ctx))
        digests.append(json.loads(meta.read_text())["containerimage.digest"])
    assert digests[0] == digests[1]


def test_multi_platform_push_and_reference_clients(bkpy: Bkpy, ctx: Path, tmp_path: Path,
                                                   registry: RegistryServer) -> None:
    ref = f"{registry.host}/demo/multi:1"
    bkpy("build", "--platform", "linux/amd64,linux/arm64", "-t", ref, "--push", str(ctx))
    raw = json.loads(_skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{ref}"))
    plats = sorted(m["platform"]["architecture"] for m in raw["manifests"])
    assert plats == ["amd64", "arm64"]
    dest = tmp_path / "copied"
    _skopeo("copy", "--src-tls-verify=false", "--all", f"docker://{ref}", f"oci:{dest}:x")
    for m in raw["manifests"]:
        cfg = json.loads(_skopeo("inspect", "--tls-verify=false", "--config",
                                 f"docker://{registry.host}/demo/multi@{m['digest']}"))
        assert cfg["architecture"] == m["platform"]["architecture"]

    # pulled back as a base image for each platform, RUN under emulation saw the right arch
    out = tmp_path / "out"
    bkpy("build", "--platform", "linux/amd64,linux/arm64", "-o", f"type=local,dest={out}",
         str(ctx))
    assert (out / "linux_amd64" / "arch").read_text() == "amd64 x86_64\n"
    assert (out / "linux_arm64" / "arch").read_text() == "arm64 aarch64\n"


def test_load_then_from_the_local_store(bkpy: Bkpy, ctx: Path, tmp_path: Path) -> None:
    bkpy("build", "-t", "local/base:1", "--load", str(ctx))
    listed = bkpy("images").out
    assert "docker.io/local/base:1" in listed
    child = tmp_path / "child"
    child.mkdir()
    (child / "Dockerfile").write_text("FROM local/base:1\nRUN cat /app.txt > /copy\n")
    out = tmp_path / "out"
    bkpy("build", "-o", f"type=local,dest={out}", str(child))
    assert (out / "copy").read_text() == "app\n"
