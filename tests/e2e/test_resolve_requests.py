"""Resolving a base image asks the registry what BuildKit asks: once the manifests are in
the content store, a rebuild's only request is one HEAD for the tag, even when the tag
names an index; a tag moved to another image is followed. Real registry behind a
recording proxy, real ``bkpy``."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.e2e.conftest import make_runner
from tests.images import write_busybox_layout
from tests.registry.fixtures import Proxy


def _push_all(layout: Path, ref: str) -> None:
    subprocess.run(["skopeo", "copy", "--quiet", "--all", "--dest-tls-verify=false",
                    f"oci:{layout}", f"docker://{ref}"], check=True, timeout=120)


def test_a_rebuild_resolves_an_index_tag_with_one_head(proxy: Proxy, tmp_path: Path) -> None:
    layout = write_busybox_layout(tmp_path / "multi", ("amd64", "arm64"))
    _push_all(layout, f"{proxy.host}/resolve/base:1")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {proxy.host}/resolve/base:1\nRUN echo hi > /x\n")
    bkpy = make_runner(tmp_path / "state")

    proxy.requests.clear()
    bkpy("build", "--network", "none", str(ctx))
    # the tag, then the index and the platform manifest by digest
    assert [m for m, p in proxy.requests if "/manifests/" in p] == ["HEAD", "GET", "GET"]

    proxy.requests.clear()
    bkpy("build", "--network", "none", str(ctx))
    assert proxy.requests == [("HEAD", "/v2/resolve/base/manifests/1")]

    # the tag moves: the new index is fetched, the unchanged platform manifest is not
    moved = write_busybox_layout(tmp_path / "moved", ("arm64", "amd64"))  # another index
    _push_all(moved, f"{proxy.host}/resolve/base:1")
    proxy.requests.clear()
    r = bkpy("build", "--network", "none", "--progress", "plain", str(ctx))
    assert [m for m, p in proxy.requests if "/manifests/" in p] == ["HEAD", "GET"]
    assert "CACHED" in r.err  # same platform image: the RUN step is still cached
