"""buildx's habits through a bkpyd builder: ``-t`` with no output keeps the result in the
daemon's cache with buildx's warning for container drivers, ``BUILDX_BUILDER`` picks the
builder, ``--metadata-file`` names the build BUILDER/NODE/REF, annotations travel."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from tests.control.conftest import Daemon, client_env, run_bkpy

# buildx's words (remote driver), as the newest buildx printed them for the same build
WARNING = ("WARNING: No output specified with remote driver. Build result will only remain "
           "in the build cache. To push result image into registry use --push or to load "
           "image into docker use --load")


def _ctx(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("from busybox\nCOPY Dockerfile /x\n")
    return ctx


def test_no_output_warns_as_buildx_and_stores_nothing(tmp_path: Path,
                                                      shared_daemon: Daemon) -> None:
    env = client_env(tmp_path, shared_daemon)
    ctx = _ctx(tmp_path)
    run = run_bkpy("build", "--progress", "plain", "-t", "daemon/noout:1", str(ctx), env=env)
    # after the progress, before the warnings summary (as buildx logs it)
    lines = run.err.splitlines()
    at = lines.index(WARNING)
    assert any("warning found" in line for line in lines[at:])
    assert not any(line.startswith("#") for line in lines[at:])
    images = run_bkpy("images", env={"BKPY_ROOT": str(shared_daemon.root)}).out
    assert "daemon/noout" not in images
    quiet = run_bkpy("build", "-t", "daemon/noout:1", str(ctx), env={
        **env, "BUILDX_NO_DEFAULT_LOAD": "true"})
    assert WARNING not in quiet.err
    # --load through a daemon stores into the daemon's image store, as before
    run = run_bkpy("build", "-t", "daemon/load:1", "--load", str(ctx), env=env)
    assert WARNING not in run.err
    assert "daemon/load:1" in run_bkpy("images",
                                       env={"BKPY_ROOT": str(shared_daemon.root)}).out


def test_buildx_builder_and_metadata_ref(tmp_path: Path, shared_daemon: Daemon) -> None:
    env = client_env(tmp_path, shared_daemon)
    run_bkpy("builder", "use", "default", env=env)  # "d" is chosen by BUILDX_BUILDER only
    ctx = _ctx(tmp_path)
    md = tmp_path / "md.json"
    out = tmp_path / "o.tar"
    run = run_bkpy("build", "-o", f"type=oci,dest={out}", "--annotation", "k=v",
                   "--metadata-file", str(md), str(ctx), env={**env, "BUILDX_BUILDER": "d"})
    assert WARNING not in run.err
    meta = json.loads(md.read_text())
    builder, node, ref = meta["buildx.build.ref"].split("/")
    assert (builder, node) == ("d", "d0")
    # the ref is the daemon's history entry of that build
    shown = run_bkpy("history", "inspect", ref, "--format", "json",
                     env={**env, "BUILDX_BUILDER": "d"}).out
    assert ref in shown
    # annotations reach the daemon's exporter, the layout comes back annotated
    with tarfile.open(out) as tf:
        index = json.load(tf.extractfile("index.json"))  # type: ignore[arg-type]
        digest = index["manifests"][0]["digest"].removeprefix("sha256:")
        manifest = json.load(tf.extractfile(f"blobs/sha256/{digest}"))  # type: ignore[arg-type]
    assert manifest["annotations"] == {"k": "v"}
    assert meta["containerimage.digest"] == index["manifests"][0]["digest"]
    # the flag wins over the environment
    run_bkpy("build", "--builder", "d", str(ctx), env={**env, "BUILDX_BUILDER": "nosuch"})
