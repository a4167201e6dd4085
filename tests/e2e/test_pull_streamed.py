"""A base image's layers are unpacked while they download (``BlobFeed``): the build sees
the right files; downloads cut off midway (config and layers) are retried and the layers
unpacked from the stored blobs; a tampered layer fails the build, leaving nothing that a
later good pull would trust. Real registry behind a fault-injecting proxy, real ``bkpy``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.e2e.conftest import Bkpy, make_runner
from tests.registry.fixtures import Proxy, RegistryServer

MiB = 1 << 20


def _data(seed: str, size: int) -> bytes:
    block = hashlib.sha256(seed.encode()).digest()
    parts = []
    for _ in range(size // len(block)):
        block = hashlib.sha256(block).digest()
        parts.append(block)
    return b"".join(parts)


@pytest.fixture
def base(fresh_bkpy: Bkpy, registry: RegistryServer, tmp_path: Path) -> tuple[str, str]:
    """A three-layer image pushed with bkpy: busybox, then two ~3 MB layers; returns its
    repository (below the registry) and the sha256 of the two files."""
    ctx = tmp_path / "base"
    ctx.mkdir()
    a, b = _data(f"{tmp_path}a", 3 * MiB), _data(f"{tmp_path}b", 3 * MiB)
    (ctx / "a.bin").write_bytes(a)
    (ctx / "b.bin").write_bytes(b)
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY a.bin /a.bin\nCOPY b.bin /b.bin\n")
    repo = f"pulled/base-{hashlib.sha256(str(tmp_path).encode()).hexdigest()[:8]}"
    fresh_bkpy("build", "-t", f"{registry.host}/{repo}:1", "--push", str(ctx))
    return repo, hashlib.sha256(a + b).hexdigest()


def _build_from(bkpy: Bkpy, host: str, repo: str, tmp_path: Path, name: str,
                check: bool = True) -> tuple[int, str, Path]:
    ctx = tmp_path / f"ctx-{name}"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {host}/{repo}:1\nRUN cat /a.bin /b.bin | sha256sum | cut -d' ' -f1 > /sum\n")
    out = tmp_path / f"out-{name}"
    r = bkpy("build", "-o", f"type=local,dest={out}", str(ctx), check=check)
    return r.code, r.err, out


def test_layers_unpacked_while_downloading_give_the_right_files(
        base: tuple[str, str], registry: RegistryServer, tmp_path: Path) -> None:
    repo, want = base
    user = make_runner(tmp_path / "user")
    _, _, out = _build_from(user, registry.host, repo, tmp_path, "plain")
    assert (out / "sum").read_text().strip() == want
    assert (out / "bin/busybox").is_file()


def test_a_cut_download_is_retried_and_unpacked_from_the_store(
        base: tuple[str, str], proxy: Proxy, tmp_path: Path) -> None:
    repo, want = base
    cut: list[str] = []

    def cut_every_blob_once(method: str, path: str) -> str | None:
        # the config's GET at resolve time, then each layer's while it is unpacked
        if method == "GET" and "/blobs/" in path and path not in cut:
            cut.append(path)
            return "cut"
        return None

    proxy.fault = cut_every_blob_once
    user = make_runner(tmp_path / "user")
    _, _, out = _build_from(user, proxy.host, repo, tmp_path, "cut")
    assert len(cut) == 4  # config + busybox + two layers
    assert (out / "sum").read_text().strip() == want


def test_a_tampered_layer_fails_the_build_and_a_good_pull_then_succeeds(
        base: tuple[str, str], proxy: Proxy, registry: RegistryServer,
        tmp_path: Path) -> None:
    repo, want = base

    def flip_big_blobs(method: str, path: str, body: bytes) -> bytes:
        if "/blobs/" in path and len(body) > MiB:
            return body[:-1] + bytes([body[-1] ^ 1])
        return body

    proxy.body_hook = flip_big_blobs
    user = make_runner(tmp_path / "user")
    code, err, _ = _build_from(user, proxy.host, repo, tmp_path, "bad", check=False)
    assert code == 1, err
    assert "Traceback" not in err
    assert "sha256:" in err and ("digest" in err or "hashes to" in err), err
    # the same layers through the registry itself: nothing half-made was kept
    proxy.body_hook = None
    _, _, out = _build_from(user, proxy.host, repo, tmp_path, "good")
    assert (out / "sum").read_text().strip() == want
