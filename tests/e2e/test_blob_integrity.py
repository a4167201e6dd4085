"""A corrupted blob in the content store never leaves the builder, and can be found and dropped.

Through the real ``bkpy`` (embedded, then through ``bkpyd``): build, flip bytes of a layer
blob in place (same size), and every export reading it (``type=oci``, ``type=docker``,
folders, ``--push`` to a real registry) fails naming the blob, leaving no output behind;
``du --verify`` finds it, ``prune --corrupt`` drops it, and the next build re-creates it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.control.conftest import Daemon, client_env, import_busybox, run_bkpy
from tests.e2e.conftest import Bkpy, Run, make_runner
from tests.images import write_busybox_layout
from tests.registry.fixtures import RegistryServer

DOCKERFILE = """\
FROM busybox
RUN echo built > /built
COPY app.txt /app.txt
"""


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    c = tmp_path / "ctx"
    c.mkdir()
    (c / "Dockerfile").write_text(DOCKERFILE)
    (c / "app.txt").write_text("app\n" * 1000)
    return c


def _blob_file(root: Path, digest: str) -> Path:
    return root / "content" / "content" / "blobs" / "sha256" / digest.split(":", 1)[1]


def _corrupt(path: Path) -> None:
    """Flip bytes in the middle of the file, in place: same size, different content."""
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(size // 2)
        data = f.read(8)
        f.seek(size // 2)
        f.write(bytes(b ^ 0xFF for b in data))
    assert path.stat().st_size == size


def _layout_tar(path: Path) -> tuple[dict[str, bytes], list[str]]:
    """The blobs of an OCI layout tarball (each checked against its name) and the
    digests of the image's layers."""
    blobs: dict[str, bytes] = {}
    with tarfile.open(path) as tf:
        for m in tf.getmembers():
            if m.isfile():
                f = tf.extractfile(m)
                assert f is not None
                blobs[m.name] = f.read()
    for name, data in blobs.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
    index = json.loads(blobs["index.json"])
    digest = index["manifests"][0]["digest"]
    manifest = json.loads(blobs["blobs/sha256/" + digest.split(":", 1)[1]])
    return blobs, [layer["digest"] for layer in manifest["layers"]]


def _skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)


def _assert_names_corrupt_blob(run: Run, digest: str) -> None:
    assert run.code != 0
    assert "Traceback" not in run.err
    assert f"blob {digest} in the content store is corrupted" in run.err, run.err
    assert "hashes to sha256:" in run.err
    assert "bkpy prune --corrupt" in run.err


def test_corrupted_layer_fails_every_export_until_pruned(fresh_bkpy: Bkpy, ctx: Path,
                                                         tmp_path: Path,
                                                         registry: RegistryServer) -> None:
    bkpy = fresh_bkpy
    root = tmp_path / "state"
    good = tmp_path / "good.tar"
    bkpy("build", "-t", "demo:1", "-o", f"type=oci,dest={good}", str(ctx))
    good_bytes = good.read_bytes()
    _, layers = _layout_tar(good)
    corrupted = layers[-1]  # the COPY layer, as exported (gzip)
    _corrupt(_blob_file(root, corrupted))

    # type=oci to a tar: fails, and the earlier export at the same path is untouched
    run = bkpy("build", "-t", "demo:1", "-o", f"type=oci,dest={good}", str(ctx), check=False)
    _assert_names_corrupt_blob(run, corrupted)
    assert good.read_bytes() == good_bytes
    assert not Path(f"{good}.tmp").exists()

    # type=docker: fails, writes nothing
    docker = tmp_path / "docker.tar"
    run = bkpy("build", "-t", "demo:1", "-o", f"type=docker,dest={docker}", str(ctx),
               check=False)
    _assert_names_corrupt_blob(run, corrupted)
    assert not docker.exists() and not Path(f"{docker}.tmp").exists()

    # an OCI layout folder: fails, leaves no layout (and no blob) behind
    folder = tmp_path / "folder"
    run = bkpy("build", "-o", f"type=oci,dest={folder},tar=false", str(ctx), check=False)
    _assert_names_corrupt_blob(run, corrupted)
    assert not folder.exists()
    # ... and into a folder holding another layout: that layout stays as it was
    base_ctx = tmp_path / "base-ctx"
    base_ctx.mkdir()
    (base_ctx / "Dockerfile").write_text("FROM busybox\n")
    bkpy("build", "-o", f"type=oci,dest={folder},tar=false", str(base_ctx))
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    run = bkpy("build", "-o", f"type=oci,dest={folder},tar=false", str(ctx), check=False)
    _assert_names_corrupt_blob(run, corrupted)
    after = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert after == before

    # --push: fails before the registry has the blob or any manifest
    ref = f"{registry.host}/integrity/demo:1"
    run = bkpy("build", "-t", ref, "--push", str(ctx), check=False)
    _assert_names_corrupt_blob(run, corrupted)
    assert _skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{ref}").returncode != 0
    blob_dirs = list(registry.storage.rglob(corrupted.split(":", 1)[1]))
    assert not [d for d in blob_dirs if (d / "data").exists()]

    # the check command finds it (exit 1), and drops it
    run = bkpy("du", "--verify", check=False)
    assert run.code == 1, run.err
    assert corrupted in run.out
    assert "1 corrupted blob in the content store" in run.err
    run = bkpy("prune", "--corrupt", "-f")
    assert f"removed corrupted blob {corrupted}" in run.out
    assert not _blob_file(root, corrupted).exists()
    run = bkpy("du", "--verify")
    assert "Verified: every content blob matches its digest" in run.out

    # the next build re-creates the layer from its snapshot: the very same image
    again = tmp_path / "again.tar"
    bkpy("build", "-t", "demo:1", "-o", f"type=oci,dest={again}", str(ctx))
    _, layers_again = _layout_tar(again)
    assert layers_again == layers
    assert again.read_bytes() == good_bytes
    info = json.loads(_skopeo("inspect", f"oci-archive:{again}").stdout)
    assert info["Layers"] == layers
    bkpy("build", "-t", "demo:1", "-o", f"type=docker,dest={docker}", str(ctx))
    # (skopeo names a docker archive's layers by their uncompressed digests)
    assert len(json.loads(_skopeo("inspect", f"docker-archive:{docker}").stdout)["Layers"]) \
        == len(layers)
    bkpy("build", "-t", ref, "--push", str(ctx))
    pushed = _skopeo("inspect", "--tls-verify=false", f"docker://{ref}")
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["Layers"] == layers
    copied = tmp_path / "copied"
    p = _skopeo("copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{copied}:x")
    assert p.returncode == 0, p.stderr  # skopeo checks every blob's digest as it copies


def test_prune_corrupt_drops_images_that_lost_a_blob(fresh_bkpy: Bkpy, ctx: Path,
                                                     tmp_path: Path) -> None:
    """A corrupted layer of a ``--load``ed image: the image name goes with it, and
    building it again brings it back."""
    bkpy = fresh_bkpy
    root = tmp_path / "state"
    bkpy("build", "-t", "loaded:1", "--load", str(ctx))
    out = tmp_path / "loaded.tar"
    bkpy("build", "-t", "loaded:1", "-o", f"type=oci,dest={out}", str(ctx))
    _, layers = _layout_tar(out)
    _corrupt(_blob_file(root, layers[-1]))

    assert bkpy("prune", "--corrupt", check=False, stdin="n\n").code != 0  # asks first
    assert _blob_file(root, layers[-1]).exists()
    run = bkpy("prune", "--corrupt", "-f")
    assert f"removed corrupted blob {layers[-1]}" in run.out
    assert "removed image docker.io/library/loaded:1" in run.out
    assert "loaded" not in bkpy("images").out
    assert "busybox" in bkpy("images").out  # images that did not lose a blob stay

    bkpy("build", "-t", "loaded:1", "--load", str(ctx))
    assert "loaded" in bkpy("images").out
    bkpy("du", "--verify")
    # and the image is usable as a base again
    (ctx / "Dockerfile").write_text("FROM loaded:1\nRUN cat /built /app.txt > /both\n")
    bkpy("build", "-o", f"type=local,dest={tmp_path / 'files'}", str(ctx))
    assert (tmp_path / "files" / "both").read_text().startswith("built\napp\n")


def test_prune_corrupt_rejects_other_filters(bkpy: Bkpy) -> None:
    run = bkpy("prune", "--corrupt", "--all", "-f", check=False)
    assert run.code == 2
    assert "--corrupt cannot be combined" in run.err


def test_through_bkpyd(tmp_path: Path, ctx: Path) -> None:
    """The same check and drop, and the same export failure, through the daemon."""
    layout = write_busybox_layout(tmp_path / "busybox")
    import_busybox(tmp_path / "d-root", layout)
    sock = tmp_path / "d.sock"
    daemon = Daemon(tmp_path / "d-root", f"unix://{sock}", ["--addr", f"unix://{sock}"],
                    tmp_path / "d.log").start()
    try:
        env = client_env(tmp_path, daemon)
        out = tmp_path / "img.tar"
        run_bkpy("build", "-o", f"type=oci,dest={out}", str(ctx), env=env)
        _, layers = _layout_tar(out)
        _corrupt(_blob_file(daemon.root, layers[-1]))

        failed = run_bkpy("build", "-o", f"type=oci,dest={tmp_path / 'bad.tar'}", str(ctx),
                          env=env, check=False)
        _assert_names_corrupt_blob(Run(failed.code, failed.out, failed.err), layers[-1])
        assert not (tmp_path / "bad.tar").exists()

        found = run_bkpy("du", "--verify", env=env, check=False)
        assert found.code == 1 and layers[-1] in found.out, found.err
        dropped = run_bkpy("prune", "--corrupt", "-f", env=env)
        assert f"removed corrupted blob {layers[-1]}" in dropped.out
        run_bkpy("du", "--verify", env=env)
        run_bkpy("build", "-o", f"type=oci,dest={tmp_path / 'again.tar'}", str(ctx), env=env)
        assert _layout_tar(tmp_path / "again.tar")[1] == layers
    finally:
        daemon.stop()


def test_du_verify_passes_on_an_empty_root(tmp_path: Path) -> None:
    run = make_runner(tmp_path / "empty")("du", "--verify")
    assert "Verified: every content blob matches its digest" in run.out
