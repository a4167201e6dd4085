"""buildx's habits through ``bkpy build`` on the embedded builder: ``-t`` with no output
loads the image (as buildx's docker driver), ``BUILDX_NO_DEFAULT_LOAD``,
``BUILDX_BUILDER``, ``--metadata-file`` with ``buildx.build.ref``, and exporter options
that no output type takes. The daemon's side is tests/control/test_buildx_flags_daemon.py.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Bkpy

NO_OUTPUT_WARNING = "WARNING: No output specified with"


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    d = tmp_path / "ctx"
    d.mkdir()
    (d / "Dockerfile").write_text("FROM busybox\nCOPY a.txt /a.txt\n")
    (d / "a.txt").write_text("a\n")
    return d


def test_tag_without_output_loads_into_the_local_image_store(fresh_bkpy: Bkpy,
                                                             ctx: Path) -> None:
    run = fresh_bkpy("build", "--progress", "plain", "-t", "noout/app:1", str(ctx))
    assert NO_OUTPUT_WARNING not in run.err
    assert "docker.io/noout/app:1" in fresh_bkpy("images").out
    # and it is usable as a base image at once, as after --load
    child = ctx.parent / "child"
    child.mkdir()
    (child / "Dockerfile").write_text("FROM noout/app:1\nRUN cat /a.txt > /b.txt\n")
    out = ctx.parent / "out"
    fresh_bkpy("build", "-o", f"type=local,dest={out}", str(child))
    assert (out / "b.txt").read_text() == "a\n"


def test_no_default_load_keeps_the_result_in_the_cache_only(fresh_bkpy: Bkpy,
                                                            ctx: Path) -> None:
    run = fresh_bkpy("build", "-t", "noout/off:1", str(ctx),
                     env={"BUILDX_NO_DEFAULT_LOAD": "1"})
    assert NO_OUTPUT_WARNING not in run.err  # buildx says nothing then either
    assert "noout/off:1" not in fresh_bkpy("images").out
    # a value that is no Go boolean: buildx's warning, and loading as usual
    run = fresh_bkpy("build", "-t", "noout/on:1", str(ctx),
                     env={"BUILDX_NO_DEFAULT_LOAD": "maybe"})
    assert "WARNING: invalid non-bool value for BUILDX_NO_DEFAULT_LOAD: maybe" in run.err
    assert "docker.io/noout/on:1" in fresh_bkpy("images").out


def test_buildx_builder_selects_the_builder_and_the_flag_wins(bkpy: Bkpy, ctx: Path) -> None:
    env = {"BUILDX_BUILDER": "nosuch"}
    run = bkpy("build", str(ctx), env=env, check=False)
    assert run.code == 2
    assert "ERROR: no builder 'nosuch' found" in run.err
    bad = bkpy("du", env=env, check=False)  # every command that picks a builder
    assert bad.code == 2 and "no builder 'nosuch' found" in bad.err
    bkpy("build", "--builder", "default", str(ctx), env=env)
    bkpy("build", str(ctx), env={"BUILDX_BUILDER": "default"})


def test_metadata_file_names_the_build_by_its_history_ref(bkpy: Bkpy, ctx: Path,
                                                         tmp_path: Path) -> None:
    md = tmp_path / "md.json"
    bkpy("build", "--metadata-file", str(md), "-o", f"type=oci,dest={tmp_path / 'o.tar'}",
         "-t", "meta/app:1", str(ctx))
    text = md.read_text()
    meta = json.loads(text)
    assert list(meta) == sorted(meta)  # buildx writes a Go map: keys sorted
    builder, node, ref = meta["buildx.build.ref"].split("/")
    assert (builder, node) == ("default", "default0")
    inspected = json.loads(bkpy("history", "inspect", ref, "--format", "json").out)
    assert ref in json.dumps(inspected)
    desc = meta["containerimage.descriptor"]
    assert list(desc)[:3] == ["mediaType", "digest", "size"]  # as BuildKit orders it
    assert meta["containerimage.digest"] == desc["digest"]
    assert meta["containerimage.config.digest"].startswith("sha256:")
    assert meta["image.name"] == "docker.io/meta/app:1"  # a layout's names are normalized
    assert "buildx.build.provenance" not in meta  # bkpy makes no provenance


def test_metadata_file_without_output_still_has_the_ref(bkpy: Bkpy, ctx: Path,
                                                       tmp_path: Path) -> None:
    md = tmp_path / "md.json"
    bkpy("build", "--metadata-file", str(md), str(ctx),
         env={"BUILDX_BUILDER": "default"})
    assert json.loads(md.read_text())["buildx.build.ref"].startswith("default/default0/")


@pytest.mark.parametrize(("output", "message"), [
    ("type=oci,dest=o.tar,fo=bar", 'ERROR: unknown exporter option "fo" for type=oci'),
    ("type=local,dest=o,compression=zstd",
     'ERROR: unknown exporter option "compression" for type=local'),
    ("type=image,name=x,unpack=true",
     'ERROR: exporter option "unpack" of type=image is not supported by bkpy'),
    ("type=registry,name=x,push-by-digest=true",
     'ERROR: exporter option "push-by-digest" of type=registry is not supported by bkpy'),
    ("type=oci,dest=o.tar,annotation-foo.x=1", "ERROR: unrecognized annotation type foo"),
])
def test_exporter_options_not_understood_are_refused(bkpy: Bkpy, ctx: Path, tmp_path: Path,
                                                     output: str, message: str) -> None:
    run = bkpy("build", "-o", output, str(ctx), cwd=tmp_path, check=False)
    assert run.code == 2, run.err
    assert message in run.err
    assert "hint: type=" in run.err or "annotation kinds" in run.err
    assert "Traceback" not in run.err
    assert not (tmp_path / "o.tar").exists()


def _labels(layout_tar: Path) -> Any:
    with tarfile.open(layout_tar) as tf:
        def blob(digest: str) -> Any:
            f = tf.extractfile(f"blobs/sha256/{digest.removeprefix('sha256:')}")
            assert f is not None
            return json.load(f)

        index = tf.extractfile("index.json")
        assert index is not None
        manifest = blob(json.load(index)["manifests"][0]["digest"])
        return blob(manifest["config"]["digest"])["config"].get("Labels") or {}


def test_buildx_git_labels(bkpy: Bkpy, tmp_path: Path) -> None:
    """The labels the newest buildx added for the same repository (recorded)."""
    repo = tmp_path / "repo"
    app = repo / "app"
    app.mkdir(parents=True)
    (app / "Dockerfile").write_text("FROM busybox\nCOPY Dockerfile /x\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "one"],
                 ["remote", "add", "origin", "https://user:tok@example.com/org/repo.git"]):
        subprocess.run([*git, *args], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                         text=True).stdout.strip()
    out = tmp_path / "o.tar"
    args = ("build", "-o", f"type=oci,dest={out}", "--label",
            "org.opencontainers.image.source=mine", str(app))
    bkpy(*args)
    assert _labels(out) == {"org.opencontainers.image.source": "mine"}  # not asked for
    bkpy(*args, env={"BUILDX_GIT_LABELS": "1"})
    assert _labels(out) == {
        "com.docker.image.source.entrypoint": "app/Dockerfile",
        "org.opencontainers.image.revision": sha,
        "org.opencontainers.image.source": "https://xxxxx:xxxxx@example.com/org/repo.git"}
    (app / "new.txt").write_text("changed\n")
    bkpy(*args, env={"BUILDX_GIT_LABELS": "full", "BUILDX_GIT_CHECK_DIRTY": "1"})
    assert _labels(out)["org.opencontainers.image.revision"] == f"{sha}-dirty"


def test_buildkit_options_that_ask_for_what_bkpy_does_are_accepted(bkpy: Bkpy, ctx: Path,
                                                                   tmp_path: Path) -> None:
    bkpy("build", "-o", f"type=local,dest={tmp_path / 'o'},platform-split=true", str(ctx))
    assert (tmp_path / "o" / "a.txt").read_text() == "a\n"
    run = bkpy("build", "-o", f"type=local,dest={tmp_path / 'p'},platform-split=false",
               str(ctx), check=False)
    assert run.code == 2
    assert 'exporter option "platform-split" of type=local is not supported by bkpy' in run.err
