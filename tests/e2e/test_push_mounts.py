"""A push mounts the blobs the registry already holds in another repository (known from
where they were pulled or pushed before) instead of uploading them, as BuildKit does; a
mount the registry refuses falls back to an upload. Real registry behind a recording
proxy, real ``bkpy``, the pushed images read back with skopeo."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

from buildkit_py.content.store import ContentStore
from buildkit_py.registry.blob_sources import label_key
from tests.e2e.conftest import make_runner
from tests.images import push_layout
from tests.registry.fixtures import Proxy, RegistryServer


def _uploads(proxy: Proxy, repo: str) -> tuple[list[str], int]:
    """(digests mounted into ``repo``, blob uploads finished there)."""
    mounted = [p.split("mount=", 1)[1].split("&", 1)[0] for m, p in proxy.requests
               if m == "POST" and f"/v2/{repo}/blobs/uploads/?mount=" in p]
    puts = sum(1 for m, p in proxy.requests
               if m == "PUT" and f"/v2/{repo}/blobs/uploads/" in p)
    return mounted, puts


def _layers(ref: str) -> list[str]:
    """The layer digests of the manifest ``ref`` (host/repo:tag) names."""
    host, rest = ref.split("/", 1)
    repo, tag = rest.rsplit(":", 1)
    req = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{tag}", headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json, "
                  "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return [layer["digest"] for layer in json.loads(resp.read())["layers"]]


def test_base_layers_and_pushed_blobs_are_mounted_not_uploaded_again(
        proxy: Proxy, busybox_layout: Path, tmp_path: Path) -> None:
    base = push_layout(busybox_layout, f"{proxy.host}/mounts/base")
    base_layer = _layers(f"{base}:latest")[0]
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}:latest\nRUN echo made > /made\n")
    bkpy = make_runner(tmp_path / "state")

    bkpy("build", "--push", "-t", f"{proxy.host}/mounts/app:1", str(ctx))
    mounted, puts = _uploads(proxy, "mounts/app")
    assert mounted == [base_layer]  # the pulled base layer: mounted from mounts/base
    assert puts == 2  # the RUN layer and the config
    assert _layers(f"{proxy.host}/mounts/app:1")[0] == base_layer

    proxy.requests.clear()
    bkpy("build", "--push", "-t", f"{proxy.host}/mounts/copy:1", str(ctx))
    mounted, puts = _uploads(proxy, "mounts/copy")
    assert len(mounted) == 3 and puts == 0  # every blob was pushed to mounts/app before
    assert _layers(f"{proxy.host}/mounts/copy:1") == _layers(f"{proxy.host}/mounts/app:1")


def test_a_mount_the_registry_refuses_is_uploaded_instead(
        proxy: Proxy, registry: RegistryServer, busybox_layout: Path, tmp_path: Path) -> None:
    base = push_layout(busybox_layout, f"{proxy.host}/refused/base")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}:latest\nRUN echo made > /made\n")
    state = tmp_path / "state"
    bkpy = make_runner(state)
    bkpy("build", "-t", "refused/app", "--load", str(ctx))  # pulls and labels the base
    base_layer = _layers(f"{base}:latest")[0]
    store = ContentStore(state / "content")
    store.set_label_values(label_key(proxy.host), {base_layer: "refused/gone"})
    store.close()

    proxy.requests.clear()
    bkpy("build", "--push", "-t", f"{proxy.host}/refused/app:1", str(ctx))
    mounted, puts = _uploads(proxy, "refused/app")
    assert mounted == [base_layer]  # asked, but refused/gone has no such blob
    assert puts == 3  # so it was uploaded with the other two
    assert _layers(f"{proxy.host}/refused/app:1")[0] == base_layer
    subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                    f"docker://{registry.host}/refused/app:1", f"oci:{tmp_path / 'copied'}:x"],
                   check=True, timeout=120)
