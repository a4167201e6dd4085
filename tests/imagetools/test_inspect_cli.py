"""``bkpy imagetools inspect`` against a real registry and the local image store."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from buildkit_py.content import ContentStore
from buildkit_py.platforms import Platform
from buildkit_py.registry import Descriptor, RegistryClient, StaticCredentials
from buildkit_py.registry import mediatypes as mt
from tests.e2e.conftest import Bkpy
from tests.images import write_busybox_layout
from tests.imagetools.conftest import Pushed, skopeo_json, skopeo_raw
from tests.registry.fixtures import FAST_RETRY, make_image


def test_index_lists_each_manifest_with_name_at_digest_and_platform(
        bkpy: Bkpy, pushed: Pushed) -> None:
    ref = pushed.ref("src/multi:1")
    out = bkpy("imagetools", "inspect", ref).out
    lines = out.splitlines()
    assert lines[:3] == [
        f"Name:      {ref}",
        "MediaType: application/vnd.oci.image.index.v1+json",
        f"Digest:    {pushed.index.digest}",
    ]
    assert "Manifests:" in lines
    for image, plat in ((pushed.amd64, "linux/amd64"), (pushed.arm64, "linux/arm64")):
        at = lines.index(f"  Name:      {ref}@{image.manifest.digest}")
        assert lines[at + 1] == "  MediaType: application/vnd.oci.image.manifest.v1+json"
        assert lines[at + 2] == f"  Platform:  {plat}"


def test_raw_prints_the_exact_bytes_skopeo_sees(bkpy: Bkpy, pushed: Pushed) -> None:
    for repo in ("src/multi:1", "src/amd64:1"):
        ref = pushed.ref(repo)
        raw = bkpy("imagetools", "inspect", "--raw", ref).out.encode()
        assert raw == skopeo_raw(ref)
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    assert digest == pushed.amd64.manifest.digest


def test_format_json_manifest_adds_digest_and_size(bkpy: Bkpy, pushed: Pushed) -> None:
    ref = pushed.ref("src/multi:1")
    doc = json.loads(bkpy("imagetools", "inspect", "--format", "{{json .Manifest}}", ref).out)
    assert list(doc)[:4] == ["schemaVersion", "mediaType", "digest", "size"]
    assert (doc["digest"], doc["size"]) == (pushed.index.digest, pushed.index.size)
    assert [m["digest"] for m in doc["manifests"]] == \
        [pushed.amd64.manifest.digest, pushed.arm64.manifest.digest]


def test_format_json_image_of_an_index_maps_platform_to_config(
        bkpy: Bkpy, pushed: Pushed) -> None:
    ref = pushed.ref("src/multi:1")
    images = json.loads(bkpy("imagetools", "inspect", "--format", "{{json .Image}}", ref).out)
    assert sorted(images) == ["linux/amd64", "linux/arm64"]
    for plat, cfg in images.items():
        assert cfg["architecture"] == plat.split("/")[1]
    expected = skopeo_json("inspect", "--tls-verify=false", "--config",
                           f"docker://{pushed.ref('src/multi')}@{pushed.arm64.manifest.digest}")
    assert images["linux/arm64"] == expected


def test_format_fields_of_a_single_manifest(bkpy: Bkpy, pushed: Pushed) -> None:
    ref = pushed.ref("src/amd64:1")
    out = bkpy("imagetools", "inspect", "--format",
               "{{.Name}} {{.Manifest.Digest}} {{.Image.Architecture}}", ref).out
    assert out == f"{ref} {pushed.amd64.manifest.digest} amd64\n"
    cfg = json.loads(bkpy("imagetools", "inspect", "--format", "{{json .Image}}", ref).out)
    assert cfg["rootfs"]["diff_ids"] and cfg["os"] == "linux"


def test_default_format_is_the_human_output(bkpy: Bkpy, pushed: Pushed) -> None:
    ref = pushed.ref("src/multi:1")
    assert bkpy("imagetools", "inspect", "--format", "{{.Manifest}}", ref).out == \
        bkpy("imagetools", "inspect", ref).out


def test_local_reads_the_builders_image_store_without_a_registry(
        bkpy: Bkpy, tmp_path: Path) -> None:
    layout = write_busybox_layout(tmp_path / "layout", ("amd64", "arm64"))
    bkpy("image", "import", str(layout), "tools/busybox:1")
    out = bkpy("imagetools", "inspect", "--local", "tools/busybox:1").out
    assert out.startswith("Name:      docker.io/tools/busybox:1\n")
    assert "Platform:  linux/amd64" in out and "Platform:  linux/arm64" in out
    images = json.loads(bkpy("imagetools", "inspect", "--local", "--format", "{{json .Image}}",
                             "tools/busybox:1").out)
    assert images["linux/arm64"]["architecture"] == "arm64"
    index = json.loads((layout / "index.json").read_text())["manifests"][0]
    raw = bkpy("imagetools", "inspect", "--local", "--raw", "tools/busybox:1").out.encode()
    assert raw == (layout / "blobs" / "sha256" / index["digest"][7:]).read_bytes()
    missing = bkpy("imagetools", "inspect", "--local", "tools/nope:1", check=False)
    assert missing.code == 1
    assert "tools/nope:1 is not in the local image store" in missing.err


def test_missing_image_and_bad_usage_exit_with_clear_errors(bkpy: Bkpy, pushed: Pushed) -> None:
    gone = bkpy("imagetools", "inspect", pushed.ref("src/none:1"), check=False)
    assert gone.code == 1
    assert f"not found: {pushed.ref('src/none:1')}" in gone.err
    assert "Traceback" not in gone.err
    # A bad template is refused before any network I/O (port 1 would fail otherwise).
    bad = bkpy("imagetools", "inspect", "--format", "{{range .Image}}{{end}}",
               "127.0.0.1:1/x:1", check=False)
    assert bad.code == 2
    assert "'range' blocks are not supported" in bad.err
    both = bkpy("imagetools", "inspect", "--raw", "--format", "{{.Name}}", "x", check=False)
    assert both.code == 2
    assert "cannot be combined" in both.err


def test_attestation_entries_show_annotations_and_have_no_image(
        bkpy: Bkpy, pushed: Pushed, tmp_path: Path) -> None:
    with ContentStore(tmp_path / "store") as store, \
            RegistryClient(credentials=StaticCredentials({}), retry=FAST_RETRY) as client:
        image = make_image(store, platform=Platform("linux", "amd64"))
        attestation = make_image(store, layer_sizes=(100,))
        entries = [image.manifest.to_json(), {
            **attestation.manifest.to_json(),
            "platform": {"architecture": "unknown", "os": "unknown"},
            "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                            "vnd.docker.reference.digest": image.manifest.digest}}]
        body = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                           "manifests": entries}).encode()
        index = Descriptor(mt.OCI_INDEX, store.write(body), len(body))
        client.push(pushed.ref("src/attested:1"), store, index)
    ref = pushed.ref("src/attested:1")
    lines = bkpy("imagetools", "inspect", ref).out.splitlines()
    at = lines.index(f"  Name:        {ref}@{attestation.manifest.digest}")
    assert lines[at:at + 6] == [
        f"  Name:        {ref}@{attestation.manifest.digest}",
        f"  MediaType:   {mt.OCI_MANIFEST}",
        "  Platform:    unknown/unknown",
        "  Annotations:",
        f"    vnd.docker.reference.digest: {image.manifest.digest}",
        "    vnd.docker.reference.type: attestation-manifest",
    ]
    images = json.loads(bkpy("imagetools", "inspect", "--format", "{{json .Image}}", ref).out)
    assert list(images) == ["linux/amd64"]
