"""More images in and out: imagetools on built pushes, re-push economy, corrupted registry
blobs, and oci-layout named contexts. Real registry, real ``bkpy`` CLI, skopeo as referee."""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests.e2e.conftest import Bkpy, make_runner
from tests.images import write_busybox_layout
from tests.registry.fixtures import Proxy, RegistryServer

DOCKERFILE = """\
FROM busybox
ARG TARGETARCH
COPY app.txt /app.txt
ENV ARCH=$TARGETARCH
"""
ELF_MACHINE = {"amd64": 0x3E, "arm64": 0xB7}


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    c = tmp_path / "ctx"
    c.mkdir()
    (c / "Dockerfile").write_text(DOCKERFILE)
    (c / "app.txt").write_text(f"app {uuid.uuid4().hex}\n")  # layers unique to each test
    return c


def _skopeo_raw(ref: str) -> bytes:
    p = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{ref}"],
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout


def _platforms(raw: bytes) -> list[str]:
    return sorted(f"{m['platform']['os']}/{m['platform']['architecture']}"
                  for m in json.loads(raw)["manifests"])


def test_imagetools_inspect_of_a_multi_platform_push(bkpy: Bkpy, ctx: Path,
                                                     registry: RegistryServer) -> None:
    ref = f"{registry.host}/more/multi:1"
    bkpy("build", "--platform", "linux/amd64,linux/arm64", "-t", ref, "--push", str(ctx))
    raw = _skopeo_raw(ref)
    out = bkpy("imagetools", "inspect", ref).out
    assert "Platform:  linux/amd64" in out and "Platform:  linux/arm64" in out
    for m in json.loads(raw)["manifests"]:
        assert f"  Name:      {ref}@{m['digest']}" in out
    assert bkpy("imagetools", "inspect", "--raw", ref).out.encode() == raw
    envs = json.loads(bkpy("imagetools", "inspect", "--format", "{{json .Image}}", ref).out)
    assert {p: c["config"]["Env"][-1] for p, c in envs.items()} == {
        "linux/amd64": "ARCH=amd64", "linux/arm64": "ARCH=arm64"}


def test_imagetools_create_joins_two_single_platform_pushes(bkpy: Bkpy, ctx: Path,
                                                            registry: RegistryServer) -> None:
    repo = f"{registry.host}/more/joined"
    for arch in ("amd64", "arm64"):
        bkpy("build", "--platform", f"linux/{arch}", "-t", f"{repo}:{arch}", "--push", str(ctx))
    bkpy("imagetools", "create", "-t", f"{repo}:all", f"{repo}:amd64", f"{repo}:arm64")
    raw = _skopeo_raw(f"{repo}:all")
    assert _platforms(raw) == ["linux/amd64", "linux/arm64"]
    singles = {json.loads(_skopeo_raw(f"{repo}:{a}"))["config"]["digest"] for a in
               ("amd64", "arm64")}
    configs = {json.loads(_skopeo_raw(f"{repo}@{m['digest']}"))["config"]["digest"]
               for m in json.loads(raw)["manifests"]}
    assert configs == singles


def test_repushing_an_unchanged_image_uploads_no_layer_bytes(
        bkpy: Bkpy, ctx: Path, proxy: Proxy, registry: RegistryServer) -> None:
    ref = f"{proxy.host}/more/again:1"
    bkpy("build", "-t", ref, "--push", str(ctx))
    assert any(m == "PUT" and "/blobs/uploads/" in p for m, p in proxy.requests)  # uploaded
    proxy.requests.clear()
    bkpy("build", "-t", ref, "--push", str(ctx))
    manifest = json.loads(_skopeo_raw(f"{registry.host}/more/again:1"))
    for layer in manifest["layers"]:
        touched = [m for m, p in proxy.requests if layer["digest"] in unquote(p)]
        assert touched == ["HEAD"], (layer["digest"], proxy.requests)
    # only the config (its "created" time is new) may be uploaded, in one PUT
    uploaded = [unquote(p) for m, p in proxy.requests if m in ("PUT", "PATCH")
                and "/blobs/uploads/" in p]
    assert all(f"digest={manifest['config']['digest']}" in p for p in uploaded), uploaded

    # a reproducible build is the same image: nothing at all is uploaded again
    epoch = ("--build-arg", "SOURCE_DATE_EPOCH=1700000000")
    bkpy("build", *epoch, "-t", ref, "--push", str(ctx))
    proxy.requests.clear()
    bkpy("build", *epoch, "-t", ref, "--push", str(ctx))
    assert not [r for r in proxy.requests if "/blobs/uploads/" in r[1]], proxy.requests
    assert all(m == "HEAD" for m, p in proxy.requests if "/blobs/" in p)


def test_a_corrupted_registry_blob_is_refused_by_from(bkpy: Bkpy, ctx: Path, tmp_path: Path,
                                                      registry: RegistryServer) -> None:
    ref = f"{registry.host}/more/corrupt:1"
    bkpy("build", "-t", ref, "--push", str(ctx))
    layer = json.loads(_skopeo_raw(ref))["layers"][-1]["digest"]  # the COPY layer
    data = registry.blob_data_path(layer)
    blob = bytearray(data.read_bytes())
    mid = len(blob) // 2
    blob[mid:mid + 8] = bytes(b ^ 0xFF for b in blob[mid:mid + 8])  # same size, other bytes
    data.write_bytes(bytes(blob))
    child = tmp_path / "child"
    child.mkdir()
    (child / "Dockerfile").write_text(f"FROM {ref}\nCOPY x /x\n")
    (child / "x").write_text("x\n")
    out = tmp_path / "out"
    fresh = make_runner(tmp_path / "empty-state")  # nothing local: FROM must pull
    run = fresh("build", "-o", f"type=local,dest={out}", str(child), check=False)
    assert run.code == 1, run.err
    assert f"blob {layer}" in run.err and "is corrupted" in run.err
    assert "Traceback" not in run.err
    assert not (out / "app.txt").exists()


def test_oci_layout_context_feeds_from_and_copy_from(bkpy: Bkpy, tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "Dockerfile").write_text(
        "FROM busybox\nCOPY app.txt /app.txt\nENV FROM_LAYOUT=yes\nWORKDIR /srv\n")
    (base / "app.txt").write_text("from the layout\n")
    layout = tmp_path / "layout"
    bkpy("build", "-t", "lay:v1", "-o", f"type=oci,tar=false,dest={layout}", str(base))
    digest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]

    app = tmp_path / "app"
    app.mkdir()
    (app / "Dockerfile").write_text(
        "FROM base\n"
        "COPY --from=extra /app.txt /copied.txt\n"
        'RUN echo "$FROM_LAYOUT" > /env.txt && pwd > /pwd.txt\n')
    out = tmp_path / "out"
    # An empty state root and no registry: every blob must come from the layout.
    fresh = make_runner(tmp_path / "empty-state")
    fresh("build", "--build-context", f"base=oci-layout://{layout}:v1",
          "--build-context", f"extra=oci-layout://{layout}@{digest}",
          "-o", f"type=local,dest={out}", str(app))
    assert (out / "app.txt").read_text() == "from the layout\n"
    assert (out / "copied.txt").read_text() == "from the layout\n"
    assert (out / "env.txt").read_text() == "yes\n"
    assert (out / "pwd.txt").read_text() == "/srv\n"

    wrong = fresh("build", "--build-context", f"base=oci-layout://{layout}:nope",
                  "--build-context", f"extra=oci-layout://{layout}",
                  "-o", f"type=local,dest={tmp_path / 'out2'}", str(app), check=False)
    assert wrong.code == 1  # found when FROM resolves it: a failed build, as buildx
    assert "no image tagged 'nope'" in wrong.err and "tags in the layout: v1" in wrong.err


def test_oci_layout_index_gives_each_platform_its_own_image(tmp_path: Path) -> None:
    layout = write_busybox_layout(tmp_path / "bb", ("amd64", "arm64"))  # untagged index
    app = tmp_path / "app"
    app.mkdir()
    (app / "Dockerfile").write_text("FROM base\nCOPY f /f\n")
    (app / "f").write_text("f\n")
    out = tmp_path / "out"
    make_runner(tmp_path / "state")(
        "build", "--platform", "linux/amd64,linux/arm64",
        "--build-context", f"base=oci-layout://{layout}", "-o", f"type=local,dest={out}",
        str(app))
    for arch, machine in ELF_MACHINE.items():
        elf = (out / f"linux_{arch}" / "bin" / "busybox").read_bytes()
        assert int.from_bytes(elf[18:20], "little") == machine
        assert (out / f"linux_{arch}" / "f").read_text() == "f\n"


def test_a_corrupted_oci_layout_blob_is_refused(tmp_path: Path) -> None:
    layout = write_busybox_layout(tmp_path / "bb", ("amd64",))
    manifest_digest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / manifest_digest[7:]).read_text())
    layer = blobs / manifest["layers"][0]["digest"][7:]
    data = bytearray(layer.read_bytes())
    data[100] ^= 0xFF
    layer.write_bytes(bytes(data))
    app = tmp_path / "app"
    app.mkdir()
    (app / "Dockerfile").write_text("FROM base\nCOPY f /f\n")
    (app / "f").write_text("f\n")
    run = make_runner(tmp_path / "state")(
        "build", "--build-context", f"base=oci-layout://{layout}",
        "-o", f"type=local,dest={tmp_path / 'out'}", str(app), check=False)
    assert run.code == 1, run.err  # found while converting: a failed build, as buildx
    assert f"blob {manifest['layers'][0]['digest']} is corrupted" in run.err
    assert "Traceback" not in run.err


def _with_config(layout: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite the layout's (single) image config through ``edit``, re-linking its digests."""
    blobs = layout / "blobs" / "sha256"

    def put(doc: dict[str, Any]) -> dict[str, Any]:
        raw = json.dumps(doc).encode()
        digest = hashlib.sha256(raw).hexdigest()
        (blobs / digest).write_bytes(raw)
        return {"digest": f"sha256:{digest}", "size": len(raw)}

    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((blobs / index["manifests"][0]["digest"][7:]).read_text())
    config = json.loads((blobs / manifest["config"]["digest"][7:]).read_text())
    edit(config)
    manifest["config"].update(put(config))
    index["manifests"][0].update(put(manifest))
    (layout / "index.json").write_text(json.dumps(index))


def test_a_base_layer_that_is_not_its_diff_id_is_refused(tmp_path: Path) -> None:
    layout = write_busybox_layout(tmp_path / "bb", ("amd64",))
    wrong = "sha256:" + "0" * 64
    _with_config(layout, lambda c: c["rootfs"].update(diff_ids=[wrong]))
    app = tmp_path / "app"
    app.mkdir()
    (app / "Dockerfile").write_text("FROM base\nRUN true\n")
    bkpy = make_runner(tmp_path / "state")
    run = bkpy("build", "--build-context", f"base=oci-layout://{layout}", str(app), check=False)
    assert run.code == 1, run.err
    assert "wrong diff id calculated on extraction" in run.err and wrong in run.err
    assert "Traceback" not in run.err
    imported = bkpy("image", "import", str(layout), "bad:1", check=False)  # unpacks too
    assert imported.code == 1 and "wrong diff id calculated on extraction" in imported.err
    assert "bad:1" not in bkpy("images").out
    good = write_busybox_layout(tmp_path / "good", ("amd64",))
    bkpy("image", "import", str(good), "keep:1")
    before = bkpy("images").out
    assert bkpy("image", "import", str(layout), "keep:1", check=False).code == 1
    assert bkpy("images").out == before  # the name still names the good image


def test_fully_cached_rebuild_keeps_the_image_id(fresh_bkpy: Bkpy, tmp_path: Path) -> None:
    # As with BuildKit: timestamps come from when the (cached) layers were made.
    ctx = tmp_path / "idctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nENV A=1\nRUN echo hi > /hi\nCMD [\"sh\"]\n")
    ids = []
    for i in range(2):
        iid = tmp_path / f"iid{i}"
        fresh_bkpy("build", "--network", "none", "-t", "same:id", "--iidfile", str(iid),
                   str(ctx))
        ids.append(iid.read_text())
    assert ids[0] == ids[1]
    changed = tmp_path / "iid-changed"
    (ctx / "Dockerfile").write_text("FROM busybox\nENV A=2\nRUN echo hi > /hi\nCMD [\"sh\"]\n")
    fresh_bkpy("build", "--network", "none", "--iidfile", str(changed), str(ctx))
    assert changed.read_text() != ids[0]
