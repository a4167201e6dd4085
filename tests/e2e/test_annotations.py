"""``--annotation`` and ``-o ...,annotation*.KEY=VALUE`` through ``bkpy build``: where each
kind lands in an OCI layout and in a pushed image, single- and two-platform, and BuildKit's
refusals. The placements and messages are those the newest BuildKit + buildx gave for the
same command lines (recorded from the referee; the test needs no BuildKit)."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Bkpy
from tests.registry.fixtures import RegistryServer

# every kind, as flags and as exporter options, one of them for one platform only
MULTI_ARGS = ("--annotation", "index-descriptor:id=3",
              "--annotation", "manifest-descriptor[linux/amd64]:mda=4",
              "--annotation", "m=5",
              "--annotation", "manifest-descriptor:md=6")
MULTI_OPTS = "annotation-index.ia=1,annotation-manifest[linux/arm64].pa=2"


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    c = tmp_path / "ctx"
    c.mkdir()
    (c / "Dockerfile").write_text("FROM busybox\nCOPY Dockerfile /x\n")
    return c


class Layout:
    def __init__(self, tar: Path) -> None:
        self.root = tar.with_suffix("")
        with tarfile.open(tar) as tf:
            tf.extractall(self.root, filter="data")
        self.index = self.json("index.json")

    def json(self, rel: str) -> Any:
        return json.loads((self.root / rel).read_text())

    def blob(self, digest: str) -> Any:
        return self.json(f"blobs/sha256/{digest.removeprefix('sha256:')}")


def test_single_platform_oci_layout(bkpy: Bkpy, ctx: Path, tmp_path: Path) -> None:
    out, md = tmp_path / "a.tar", tmp_path / "md.json"
    bkpy("build", "-o", f"type=oci,dest={out},annotation.a=1,"
         "annotation-manifest-descriptor.md=2", "--annotation", "b=3",
         "--annotation", "manifest,manifest-descriptor:c=4",
         "--annotation", "manifest[linux/arm64]:only-arm=1",  # single: not applied
         "--metadata-file", str(md), str(ctx))
    lay = Layout(out)
    [entry] = lay.index["manifests"]
    assert entry["annotations"] == {"c": "4", "md": "2"}
    assert lay.blob(entry["digest"])["annotations"] == {"a": "1", "b": "3", "c": "4"}
    desc = json.loads(md.read_text())["containerimage.descriptor"]
    assert desc["digest"] == entry["digest"]
    assert desc["annotations"] == {"c": "4", "md": "2"}


def test_two_platform_oci_layout(bkpy: Bkpy, ctx: Path, tmp_path: Path) -> None:
    out, md = tmp_path / "m.tar", tmp_path / "md.json"
    bkpy("build", "--platform", "linux/amd64,linux/arm64", "-t", "ann/multi:2",
         "-o", f"type=oci,dest={out},{MULTI_OPTS}", *MULTI_ARGS, "--metadata-file", str(md),
         str(ctx))
    lay = Layout(out)
    [entry] = lay.index["manifests"]
    assert entry["annotations"]["id"] == "3"  # index-descriptor: index.json's entry
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "2"
    index = lay.blob(entry["digest"])
    assert index["annotations"] == {"ia": "1"}
    by_arch = {m["platform"]["architecture"]: m for m in index["manifests"]}
    assert by_arch["amd64"]["annotations"] == {"md": "6", "mda": "4"}
    assert by_arch["arm64"]["annotations"] == {"md": "6"}
    assert lay.blob(by_arch["amd64"]["digest"])["annotations"] == {"m": "5"}
    assert lay.blob(by_arch["arm64"]["digest"])["annotations"] == {"m": "5", "pa": "2"}
    meta = json.loads(md.read_text())
    assert meta["containerimage.descriptor"]["annotations"] == {"id": "3"}
    assert meta["containerimage.digest"] == entry["digest"]


def _pull(registry: RegistryServer, repo: str, ref: str) -> Any:
    """The manifest or index at tag or digest ``ref``, as the registry serves it."""
    sep = "@" if ref.startswith("sha256:") else ":"
    p = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--raw",
                        f"docker://{registry.host}/{repo}{sep}{ref}"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_push_single_and_two_platforms(bkpy: Bkpy, ctx: Path,
                                       registry: RegistryServer) -> None:
    bkpy("build", "-t", f"{registry.host}/ann/one:1", "--push",
         "--annotation", "org.opencontainers.image.title=one", str(ctx))
    assert _pull(registry, "ann/one", "1")["annotations"] == {
        "org.opencontainers.image.title": "one"}

    bkpy("build", "--platform", "linux/amd64,linux/arm64", "-t",
         f"{registry.host}/ann/two:1", "--push", *MULTI_ARGS,
         "--annotation", "index:ia=1", "--annotation", "manifest[linux/arm64]:pa=2", str(ctx))
    index = _pull(registry, "ann/two", "1")
    assert index["annotations"] == {"ia": "1"}
    by_arch = {m["platform"]["architecture"]: m for m in index["manifests"]}
    assert by_arch["amd64"]["annotations"] == {"md": "6", "mda": "4"}
    assert _pull(registry, "ann/two", by_arch["arm64"]["digest"])["annotations"] == {
        "m": "5", "pa": "2"}


def test_docker_media_types_keep_manifest_annotations(bkpy: Bkpy, ctx: Path,
                                                      tmp_path: Path) -> None:
    out = tmp_path / "d.tar"
    bkpy("build", "-o", f"type=oci,dest={out},oci-mediatypes=false",
         "--annotation", "manifest:x=1", str(ctx))
    lay = Layout(out)
    manifest = lay.blob(lay.index["manifests"][0]["digest"])
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert manifest["annotations"] == {"x": "1"}


@pytest.mark.parametrize(("args", "code", "message"), [
    (("--annotation", "index:x=1"), 1,
     "ERROR: failed to build: "
     "failed to solve: index annotations not supported for single platform export"),
    (("--annotation", "index-descriptor:x=1"), 1,
     "ERROR: failed to build: "
     "failed to solve: index annotations not supported for single platform export"),
    (("-o", "type=oci,dest=o.tar,oci-mediatypes=false", "--annotation",
      "manifest-descriptor:x=1"), 1,
     'ERROR: failed to build: '
     'failed to solve: cannot export annotations with "oci-mediatypes=false"'),
    (("--platform", "linux/amd64,linux/arm64", "--annotation", "manifest[linux/s390x]:x=1"),
     1, "ERROR: failed to build: "
        "failed to solve: invalid annotation: no platform linux/s390x found in source"),
    # buildx parses them once the build has started (bkpy keeps exit 2 for a bad flag)
    (("--annotation", "foo:x=1"), 2,
     'ERROR: failed to build: parse annotations: unknown annotation type "foo"'),
    (("--annotation", "x"), 2,
     'ERROR: failed to build: parse annotations: invalid annotation "x", expected key=value'),
    (("--annotation", "manifest[linux/ amd64]:x=1"), 2,
     'ERROR: failed to build: parse annotations: invalid annotation type "manifest[linux/ '
     'amd64]", expected type and optional platform in square brackets'),
])
def test_refusals(bkpy: Bkpy, ctx: Path, tmp_path: Path, args: tuple[str, ...], code: int,
                  message: str) -> None:
    if "-o" not in args:
        args = ("-o", "type=oci,dest=o.tar", *args)
    run = bkpy("build", *args, str(ctx), cwd=tmp_path, check=False)
    assert run.code == code, run.err
    assert message in run.err
    assert not (tmp_path / "o.tar").exists()


def test_index_annotations_refused_on_a_multi_node_builder(bkpy: Bkpy, ctx: Path,
                                                           tmp_path: Path) -> None:
    """The client joins such a build's index and does not annotate it yet: refused before
    any node is asked (these endpoints do not even exist)."""
    env = {"BKPY_CONFIG": str(tmp_path / "client")}
    bkpy("builder", "create", "--name", "two", "--driver", "remote",
         "unix:///nowhere-a.sock", env=env)
    bkpy("builder", "create", "--name", "two", "--append", "--node", "second", "--driver",
         "remote", "unix:///nowhere-b.sock", env=env)
    run = bkpy("build", "--builder", "two", "--platform", "linux/amd64,linux/arm64",
               "-o", f"type=oci,dest={tmp_path / 'o.tar'}", "--annotation", "index:x=1",
               str(ctx), env=env, check=False)
    assert run.code == 2
    assert ("ERROR: index annotations are not supported on a multi-node builder yet ('two' "
            "has 2 nodes)") in run.err
