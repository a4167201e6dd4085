"""``bkpy imagetools create``: indexes combined from registry images, checked with skopeo."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from buildkit_py.content import ContentStore
from buildkit_py.platforms import Platform
from buildkit_py.registry import RegistryClient, StaticCredentials
from buildkit_py.registry import mediatypes as mt
from tests.e2e.conftest import Bkpy
from tests.imagetools.conftest import Pushed, skopeo, skopeo_json, skopeo_raw
from tests.registry.fixtures import FAST_RETRY, Proxy, RegistryServer, make_image


def _platforms(raw: bytes) -> dict[str, str]:
    doc = json.loads(raw)
    return {m["digest"]: f"{m['platform']['os']}/{m['platform']['architecture']}"
            for m in doc["manifests"]}


def test_two_single_platform_images_become_one_index_by_mounting(
        bkpy: Bkpy, pushed: Pushed, make_proxy: Callable[[str], Proxy]) -> None:
    proxy = make_proxy(pushed.registry.host)
    target = f"{proxy.host}/combined/app:1"
    run = bkpy("imagetools", "create", "-t", target, f"{proxy.host}/src/amd64:1",
               f"{proxy.host}/src/arm64:1")
    raw = skopeo_raw(target)
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    assert run.out == f"{target}@{digest}\n"
    assert json.loads(raw)["mediaType"] == mt.OCI_INDEX
    assert _platforms(raw) == {pushed.amd64.manifest.digest: "linux/amd64",
                               pushed.arm64.manifest.digest: "linux/arm64"}
    # every layer and config arrived by cross-repo mount, none was uploaded
    uploads = [(m, p) for m, p in proxy.requests if "/combined/app/blobs/uploads/" in p]
    assert uploads and all(m == "POST" and "mount=" in p and "from=src" in p
                           for m, p in uploads)
    assert len(uploads) == len(pushed.amd64.blobs) + len(pushed.arm64.blobs)
    # the platform manifests were copied by digest, unchanged (skopeo asks the registry
    # directly: the proxy folds its repeated Accept headers into one)
    for image in (pushed.amd64, pushed.arm64):
        ref = pushed.ref(f"combined/app@{image.manifest.digest}")
        cfg = skopeo_json("inspect", "--tls-verify=false", "--config", f"docker://{ref}")
        assert image.manifest.platform is not None
        assert cfg["architecture"] == image.manifest.platform.architecture


def test_dry_run_prints_the_exact_index_and_pushes_nothing(bkpy: Bkpy, pushed: Pushed) -> None:
    target = pushed.ref("dry/app:1")
    run = bkpy("imagetools", "create", "--dry-run", "-t", target, pushed.ref("src/amd64:1"),
               pushed.ref("src/arm64:1"))
    printed = run.out.encode().removesuffix(b"\n")
    assert _platforms(printed) == {pushed.amd64.manifest.digest: "linux/amd64",
                                   pushed.arm64.manifest.digest: "linux/arm64"}
    gone = bkpy("imagetools", "inspect", target, check=False)
    assert gone.code == 1 and "not found" in gone.err
    # the same sources pushed give exactly the printed bytes
    bkpy("imagetools", "create", "-t", target, pushed.ref("src/amd64:1"),
         pushed.ref("src/arm64:1"))
    assert skopeo_raw(target) == printed


def test_index_and_manifest_sources_merge_without_duplicates(bkpy: Bkpy, pushed: Pushed,
                                                             tmp_path: Path) -> None:
    with ContentStore(tmp_path / "store") as store, \
            RegistryClient(credentials=StaticCredentials({}), retry=FAST_RETRY) as client:
        riscv = make_image(store, platform=Platform("linux", "riscv64"))
        client.push(pushed.ref("src/riscv:1"), store, riscv.manifest)
    target = pushed.ref("merged/app:1")
    bkpy("imagetools", "create", "-t", target, pushed.ref("src/multi:1"),
         pushed.ref("src/amd64:1"), pushed.ref("src/riscv:1"))
    assert list(_platforms(skopeo_raw(target)).values()) == \
        ["linux/amd64", "linux/arm64", "linux/riscv64"]


def test_single_source_is_retagged_unchanged(bkpy: Bkpy, pushed: Pushed) -> None:
    bkpy("imagetools", "create", "-t", pushed.ref("retag/a:1"), "-t", pushed.ref("retag/b:2"),
         pushed.ref("src/multi:1"))
    original = skopeo_raw(pushed.ref("src/multi:1"))
    assert skopeo_raw(pushed.ref("retag/a:1")) == original
    assert skopeo_raw(pushed.ref("retag/b:2")) == original


def test_bare_digest_sources_and_append_use_the_first_target(bkpy: Bkpy, pushed: Pushed) -> None:
    target = pushed.ref("src/amd64:combined")
    bkpy("imagetools", "create", "-t", target, pushed.amd64.manifest.digest)
    assert skopeo_raw(target) == skopeo_raw(pushed.ref("src/amd64:1"))
    bkpy("imagetools", "create", "--append", "-t", target, pushed.ref("src/arm64:1"))
    assert sorted(_platforms(skopeo_raw(target)).values()) == ["linux/amd64", "linux/arm64"]


def test_docker_media_types_give_a_manifest_list(bkpy: Bkpy, pushed: Pushed,
                                                 tmp_path: Path) -> None:
    with ContentStore(tmp_path / "store") as store, \
            RegistryClient(credentials=StaticCredentials({}), retry=FAST_RETRY) as client:
        for arch in ("amd64", "arm64"):
            img = make_image(store, platform=Platform("linux", arch), docker_types=True)
            client.push(pushed.ref(f"docker/{arch}:1"), store, img.manifest)
    target = pushed.ref("docker/all:1")
    bkpy("imagetools", "create", "-t", target, pushed.ref("docker/amd64:1"),
         pushed.ref("docker/arm64:1"))
    raw = json.loads(skopeo_raw(target))
    assert raw["mediaType"] == mt.DOCKER_MANIFEST_LIST
    assert {m["mediaType"] for m in raw["manifests"]} == {mt.DOCKER_MANIFEST}


def test_sources_in_another_registry_are_copied_blob_by_blob(
        bkpy: Bkpy, pushed: Pushed, tmp_path: Path) -> None:
    (tmp_path / "other-registry").mkdir()
    other = RegistryServer(tmp_path / "other-registry")
    try:
        target = f"{other.host}/copied/app:1"
        bkpy("imagetools", "create", "-t", target, pushed.ref("src/amd64:1"),
             pushed.ref("src/arm64:1"))
        assert sorted(_platforms(skopeo_raw(target)).values()) == ["linux/amd64", "linux/arm64"]
        # every blob really is there: skopeo can copy the whole index out
        skopeo("copy", "--src-tls-verify=false", "--all", f"docker://{target}",
               f"oci:{tmp_path / 'copy'}:x")
        for blob in (*pushed.amd64.blobs, *pushed.arm64.blobs):
            assert other.blob_data_path(blob.digest).is_file()
    finally:
        other.stop()


def test_usage_errors_exit_2(bkpy: Bkpy, pushed: Pushed) -> None:
    no_tag = bkpy("imagetools", "create", pushed.ref("src/amd64:1"), check=False)
    assert no_tag.code == 2 and "needs at least one -t" in no_tag.err
    with_digest = bkpy("imagetools", "create", "-t",
                       pushed.ref(f"x/y@{pushed.amd64.manifest.digest}"),
                       pushed.ref("src/amd64:1"), check=False)
    assert with_digest.code == 2 and "cannot carry a digest" in with_digest.err
    no_source = bkpy("imagetools", "create", "-t", pushed.ref("x/y:1"), check=False)
    assert no_source.code == 2 and "at least one source" in no_source.err
