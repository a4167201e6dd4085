"""One image index across the nodes of a multi-node builder: two real ``bkpyd`` daemons
(amd64 and, under qemu, arm64), a real registry, the real CLI."""

from __future__ import annotations

import json
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.control.conftest import (
    Daemon,
    MakeDaemon,
    client_env,
    import_busybox,
    run_bkpy,
)
from tests.images import write_busybox_layout
from tests.registry.fixtures import RegistryServer

DOCKERFILE = "FROM busybox\nRUN uname -m > /arch\nCOPY note.txt /note.txt\n"


@dataclass
class Pair:
    amd: Daemon
    arm: Daemon
    env: dict[str, str]
    ctx: Path
    busybox: dict[str, str]  # architecture -> manifest digest of the base image


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = RegistryServer(tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()


@pytest.fixture
def pair(tmp_path: Path, make_daemon: MakeDaemon) -> Pair:
    """Builder "multi": node multi0 for linux/amd64, multi1 for linux/arm64."""
    layout = write_busybox_layout(tmp_path / "busybox", arches=("amd64", "arm64"))
    for name in ("amd", "arm"):
        import_busybox(tmp_path / f"{name}-root", layout)
    amd = make_daemon("amd", busybox=False)
    arm = make_daemon("arm", busybox=False)
    env = client_env(tmp_path)
    run_bkpy("builder", "create", "--name", "multi", "--platform", "linux/amd64",
             amd.endpoint, env=env)
    run_bkpy("builder", "create", "--name", "multi", "--append", "--platform", "linux/arm64",
             arm.endpoint, env=env)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "note.txt").write_text("note\n")
    index = json.loads((layout / "index.json").read_text())
    if len(index["manifests"]) == 1 and "platform" not in index["manifests"][0]:
        digest = index["manifests"][0]["digest"]
        index = json.loads((layout / "blobs" / "sha256" / digest.split(":")[1]).read_text())
    busybox = {m["platform"]["architecture"]: m["digest"] for m in index["manifests"]}
    assert set(busybox) == {"amd64", "arm64"}
    return Pair(amd, arm, env, ctx, busybox)


def _build(p: Pair, *args: str) -> str:
    res = run_bkpy("build", "--builder", "multi", "--progress", "plain",
                   "--platform", "linux/amd64,linux/arm64", *args, str(p.ctx), env=p.env)
    return res.err


def _skopeo(*args: str) -> Any:
    out = subprocess.run(["skopeo", "inspect", "--tls-verify=false", *args],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return json.loads(out)


def _arch_file(layer: bytes) -> str:
    import gzip
    import io

    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tf:
        member = tf.extractfile("arch")
        assert member is not None
        return member.read().decode()


def _built_steps(p: Pair, daemon: Daemon) -> str:
    """What a node's cache holds (``bkpy du --verbose`` on that node alone)."""
    env = {**p.env, "BKPY_CONFIG": str(daemon.root.parent / f"cfg-{daemon.log.stem}")}
    run_bkpy("builder", "create", "--name", "one", "--driver", "remote", daemon.endpoint,
             "--use", env=env)
    return run_bkpy("du", "--verbose", env=env).out


def test_push_across_nodes_gives_one_index_with_each_platform_built_on_its_node(
        pair: Pair, registry: RegistryServer, tmp_path: Path) -> None:
    ref = f"{registry.host}/x:1"
    md = tmp_path / "md.json"
    err = _build(pair, "-t", ref, "-t", f"{registry.host}/x:also", "--push",
                 "--metadata-file", str(md))
    assert "[multi0] [2/3] RUN uname -m > /arch" in err
    assert "[multi1] [2/3] RUN uname -m > /arch" in err

    raw = _skopeo("--raw", f"docker://{ref}")
    assert raw["mediaType"] == "application/vnd.oci.image.index.v1+json"
    plats = [(m["platform"]["os"], m["platform"]["architecture"]) for m in raw["manifests"]]
    assert plats == [("linux", "amd64"), ("linux", "arm64")]
    # every tag names the same index, and --metadata-file its digest
    digest = _skopeo(f"docker://{ref}")["Digest"]
    assert _skopeo(f"docker://{registry.host}/x:also")["Digest"] == digest
    meta = json.loads(md.read_text())
    assert meta["containerimage.digest"] == digest
    assert [n["platforms"] for n in meta["nodes"]] == [["linux/amd64"], ["linux/arm64"]]

    from buildkit_py.registry import RegistryClient
    from buildkit_py.registry.reference import parse_reference

    with RegistryClient() as client:
        base = parse_reference(ref)
        for m, (arch, uname) in zip(raw["manifests"],
                                    (("amd64", "x86_64\n"), ("arm64", "aarch64\n")),
                                    strict=True):
            manifest = _skopeo("--raw", f"docker://{registry.host}/x@{m['digest']}")
            config = _skopeo("--config", f"docker://{registry.host}/x@{m['digest']}")
            assert config["architecture"] == arch
            # the RUN step really ran on that architecture (arm64 under qemu)
            run_layer = manifest["layers"][1]
            from buildkit_py.imagetools.sources import Blob

            data = client.fetch_blob(base, Blob.from_json(run_layer))
            assert _arch_file(data) == uname

    # each node built only its own platform: its cache holds only that busybox manifest
    amd_du, arm_du = _built_steps(pair, pair.amd), _built_steps(pair, pair.arm)
    assert "RUN uname -m" in amd_du and "RUN uname -m" in arm_du
    busybox = pair.busybox
    assert f"FROM docker.io/library/busybox:latest@{busybox['amd64']}" in amd_du
    assert f"FROM docker.io/library/busybox:latest@{busybox['arm64']}" in arm_du
    assert busybox["arm64"] not in amd_du and busybox["amd64"] not in arm_du


def _blob(tf: tarfile.TarFile, digest: str) -> Any:
    member = tf.extractfile("blobs/sha256/" + digest.split(":")[1])
    assert member is not None
    return json.loads(member.read())


def test_oci_output_across_nodes_is_one_layout_with_every_platform(
        pair: Pair, tmp_path: Path) -> None:
    out = tmp_path / "img.tar"
    _build(pair, "-o", f"type=oci,dest={out},oci-mediatypes=false", "-t", "app:1")
    raw = _skopeo("--raw", f"oci-archive:{out}")
    assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    assert [m["platform"]["architecture"] for m in raw["manifests"]] == ["amd64", "arm64"]
    with tarfile.open(out) as tf:
        member = tf.extractfile("index.json")
        assert member is not None
        index = json.loads(member.read())
        for m in raw["manifests"]:
            manifest = _blob(tf, m["digest"])
            config = _blob(tf, manifest["config"]["digest"])
            assert config["architecture"] == m["platform"]["architecture"]
            names = set(tf.getnames())
            assert all("blobs/sha256/" + layer["digest"].split(":")[1] in names
                       for layer in manifest["layers"])
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "1"
    # a folder layout that umoci reads, and the docker variant with its manifest.json
    folder = tmp_path / "layout"
    _build(pair, "-o", f"type=oci,dest={folder},tar=false")
    listed = subprocess.run(["umoci", "ls", "--layout", str(folder)], capture_output=True,
                            text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    docker = tmp_path / "docker.tar"
    _build(pair, "-o", f"type=docker,dest={docker}", "-t", "app:1")
    with tarfile.open(docker) as tf:
        member = tf.extractfile("manifest.json")
        assert member is not None
        entries = json.loads(member.read())
    assert [e["RepoTags"] for e in entries] == [["app:1"]]


def test_tar_output_across_nodes_has_a_folder_per_platform(pair: Pair, tmp_path: Path) -> None:
    out = tmp_path / "fs.tar"
    _build(pair, "-o", f"type=tar,dest={out}")
    with tarfile.open(out) as tf:
        arch = {p: tf.extractfile(f"{p}/arch").read()  # type: ignore[union-attr]
                for p in ("linux_amd64", "linux_arm64")}
        names = tf.getnames()
    assert arch == {"linux_amd64": b"x86_64\n", "linux_arm64": b"aarch64\n"}
    assert "linux_amd64/note.txt" in names and "linux_arm64/note.txt" in names
    assert all(n.startswith(("linux_amd64", "linux_arm64")) for n in names)


def test_push_across_nodes_without_a_name_is_refused_before_building(
        pair: Pair, tmp_path: Path) -> None:
    res = run_bkpy("build", "--builder", "multi", "--platform", "linux/amd64,linux/arm64",
                   "--output", "type=registry", str(pair.ctx), env=pair.env, check=False)
    assert res.code != 0 and "pushing needs an image name" in res.err
    assert "Traceback" not in res.err


# one cache across the nodes ----------------------------------------------------------------


def _layout_digest(out: Path) -> str:
    return json.loads((out / "index.json").read_text())["manifests"][0]["digest"]


def _platform_manifests(out: Path) -> list[tuple[str, str]]:
    """(architecture, manifest digest) per platform of an OCI layout's index. The joined
    index of a multi-node build is written as ``imagetools create`` writes one (indented,
    as buildx), so its own digest differs from an embedded build's; its manifests do not."""
    index = json.loads((out / "blobs" / "sha256" /
                        _layout_digest(out).split(":")[1]).read_text())
    return [(m["platform"]["architecture"], m["digest"]) for m in index["manifests"]]


def _empty_embedded(tmp_path: Path, name: str) -> dict[str, str]:
    """A client with no builder: the embedded one, on an empty root (busybox imported for
    both platforms)."""
    env = {"BKPY_CONFIG": str(tmp_path / f"{name}-client"),
           "BKPY_ROOT": str(tmp_path / f"{name}-root")}
    import_busybox(tmp_path / f"{name}-root", tmp_path / "busybox")
    return env


def _cached_build(p: Pair, env: dict[str, str], out: Path, *args: str) -> str:
    """A two-platform build on ``env``'s embedded builder; asserts no RUN or COPY ran."""
    from tests.e2e.test_cache_export import _ran

    res = run_bkpy("build", "--progress", "plain", "--platform", "linux/amd64,linux/arm64",
                   "-o", f"type=oci,dest={out},tar=false", *args, str(p.ctx), env=env)
    assert _ran(res.err) == [], res.err
    assert "CACHED" in res.err and "linux/arm64" in res.err
    return _platform_manifests(out)


def test_registry_cache_across_nodes_is_one_cache_with_every_platform(
        pair: Pair, registry: RegistryServer, tmp_path: Path) -> None:
    """Each node pushes its part by digest; the client merges them under the ref: an
    empty embedded root then runs nothing for either platform and makes the same index."""
    ref = f"{registry.host}/cache/nodes:1"
    out = tmp_path / "nodes-img"
    err = _build(pair, "-o", f"type=oci,dest={out},tar=false",
                 "--cache-to", f"type=registry,ref={ref},mode=max")
    assert "merging the cache of 2 nodes into" in err, err
    assert "replaced the others" not in err
    manifest = _skopeo("--raw", f"docker://{ref}")
    assert manifest["config"]["mediaType"] == "application/vnd.buildkit.cacheconfig.v0"
    got = _cached_build(pair, _empty_embedded(tmp_path, "b"), tmp_path / "b-img",
                        "--cache-from", ref)
    assert got == _platform_manifests(out)
    # the legacy index form too (image-manifest=false)
    legacy = f"{registry.host}/cache/nodes:legacy"
    _build(pair, "--cache-to", f"type=registry,ref={legacy},mode=max,image-manifest=false")
    raw = _skopeo("--raw", f"docker://{legacy}")
    assert raw["mediaType"] == "application/vnd.oci.image.index.v1+json"
    got = _cached_build(pair, _empty_embedded(tmp_path, "c"), tmp_path / "c-img",
                        "--cache-from", legacy)
    assert got == _platform_manifests(out)


def test_local_cache_across_nodes_is_one_tag_with_every_platform(
        pair: Pair, tmp_path: Path) -> None:
    """Each node delivers its part under a temporary tag of the client's directory; the
    client merges them into the tag asked for and drops the temporary ones."""
    dest = tmp_path / "cache"
    out = tmp_path / "nodes-img"
    _build(pair, "-o", f"type=oci,dest={out},tar=false",
           "--cache-to", f"type=local,dest={dest},mode=max,tag=ci")
    index = json.loads((dest / "index.json").read_text())
    assert [m["annotations"]["org.opencontainers.image.ref.name"]
            for m in index["manifests"]] == ["ci"]
    # what the index names and nothing else: the nodes' own manifests and configs are gone
    manifest = json.loads((dest / "blobs" / "sha256" /
                           index["manifests"][0]["digest"].split(":")[1]).read_text())
    named = {index["manifests"][0]["digest"], manifest["config"]["digest"],
             *(layer["digest"] for layer in manifest["layers"])}
    assert {"sha256:" + p.name for p in (dest / "blobs" / "sha256").iterdir()} == named
    got = _cached_build(pair, _empty_embedded(tmp_path, "b"), tmp_path / "b-img",
                        "--cache-from", f"type=local,src={dest},tag=ci")
    assert got == _platform_manifests(out)


def test_inline_cache_across_nodes(pair: Pair, registry: RegistryServer,
                                   tmp_path: Path) -> None:
    """Each platform's image config carries its own inline cache: nothing to merge."""
    ref = f"{registry.host}/x:inline"
    err = _build(pair, "-t", ref, "--push", "--cache-to", "type=inline")
    assert "merging the cache" not in err and "replaced the others" not in err
    raw = _skopeo("--raw", f"docker://{ref}")
    out = tmp_path / "b-img"
    _cached_build(pair, _empty_embedded(tmp_path, "b"), out, "--cache-from", ref)
    # the same layers per platform (the configs differ: the pushed ones carry the cache)
    pushed_layers = [[layer["digest"] for layer in
                      _skopeo("--raw", f"docker://{registry.host}/x@{m['digest']}")["layers"]]
                     for m in raw["manifests"]]
    blobs = out / "blobs" / "sha256"
    assert [[layer["digest"] for layer in
             json.loads((blobs / digest.split(":")[1]).read_text())["layers"]]
            for _, digest in _platform_manifests(out)] == pushed_layers
