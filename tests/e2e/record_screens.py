"""Record what the referee (the newest BuildKit with buildx) prints for the screens tests.

Run by hand: ``python3 -m tests.e2e.record_screens`` with the referee's buildkitd running
and a ``referee`` buildx builder (``/work/shared/tools/buildkit-referee``). Writes
``testdata/screens/``: the rawjson of a multi-stage build and of its fully cached
rebuild, its plain rebuild, and the Dockerfile context block of each error case of
:data:`tests.e2e.screens_cases.ERROR_CASES`; the transfer steps of the builds of
:func:`tests.e2e.screens_cases.transfer_builds` (``transfers.json``). The tests never need
BuildKit. ``python3 -m tests.e2e.record_screens transfers`` records only the latter;
``... du`` only how ``du`` shows a cache mount after one build (``du.json``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from tests.e2e.screens_cases import (
    ERROR_CASES,
    MULTI_STAGE,
    context_block,
    du_screen,
    transfer_builds,
    write_du_context,
    write_transfer_context,
)
from tests.images import push_layout, write_busybox_layout
from tests.registry.fixtures import RegistryServer

OUT = Path(__file__).resolve().parents[2] / "testdata" / "screens"


def _buildx(ctx: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker-buildx", "build", "--builder", "referee", *args, "."],
                          cwd=ctx, capture_output=True, text=True, timeout=300)


def _write(ctx: Path, dockerfile: str, base: str) -> None:
    ctx.mkdir(parents=True)
    (ctx / "Dockerfile").write_text(dockerfile.replace("{BASE}", base))
    (ctx / "a.txt").write_text("a\n")
    (ctx / "b.txt").write_text("b\n")


def _add_random_layer(layout: Path, size: int = 256 << 10) -> None:
    """Add a layer of random bytes to the layout's one image (gzip, OCI types)."""
    blobs = layout / "blobs" / "sha256"

    def read(digest: str) -> dict[str, Any]:
        return json.loads((blobs / digest.split(":")[1]).read_bytes())

    def put(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return f"sha256:{digest}"

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = os.urandom(size)
        info = tarfile.TarInfo("random.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    gz = gzip.compress(raw, mtime=0)
    index = json.loads((layout / "index.json").read_text())
    top = index["manifests"][0]
    manifest = read(top["digest"])
    config = read(manifest["config"]["digest"])
    manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                               "digest": put(gz), "size": len(gz)})
    config["rootfs"]["diff_ids"].append(f"sha256:{hashlib.sha256(raw).hexdigest()}")
    config["history"].append({"created": "2020-09-13T12:26:40Z", "created_by": "random"})
    cfg = json.dumps(config).encode()
    manifest["config"].update(digest=put(cfg), size=len(cfg))
    man = json.dumps(manifest).encode()
    top.update(digest=put(man), size=len(man))
    (layout / "index.json").write_text(json.dumps(index))


def record_transfers(work: Path) -> None:
    ctx = work / "transfers"
    write_transfer_context(ctx)

    def build(*args: str) -> str:
        r = _buildx(ctx, "--progress", "plain", "-o", f"type=local,dest={work / 'tout'}",
                    *args)
        assert r.returncode == 0, r.stderr
        return r.stderr

    (OUT / "transfers.json").write_text(json.dumps(transfer_builds(ctx, build), indent=2)
                                        + "\n")


def record_du(work: Path) -> None:
    cache_id, nonce = f"du-{os.urandom(4).hex()}", os.urandom(4).hex()
    ctx = work / "du"
    busy = write_du_context(ctx, cache_id, nonce)
    r = _buildx(ctx, "--build-context", f"busy={busy}")
    assert r.returncode == 0, r.stderr

    def du(*args: str) -> list[str]:
        # the referee's state holds other cache mounts: this one by its id
        p = subprocess.run(["docker-buildx", "du", "--builder", "referee", "--filter",
                            f"description~={cache_id}", *args],
                           capture_output=True, text=True, check=True, timeout=60)
        return du_screen(p.stdout, cache_id, nonce)

    (OUT / "du.json").write_text(json.dumps({"verbose": du("--verbose"), "table": du()},
                                            indent=2) + "\n")


def main(parts: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    if "du" in parts or not parts:
        with tempfile.TemporaryDirectory() as tmp:
            record_du(Path(tmp))
    if "transfers" in parts or not parts:
        with tempfile.TemporaryDirectory() as tmp:
            record_transfers(Path(tmp))
    if parts and "screens" not in parts:
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "registry").mkdir()
        server = RegistryServer(work / "registry")
        try:
            layout = write_busybox_layout(work / "bb", ("amd64",))
            _add_random_layer(layout)  # a blob the referee has never pulled: byte statuses
            base = push_layout(layout, f"{server.host}/busybox")
            ctx = work / "multi"
            _write(ctx, MULTI_STAGE, base)
            out = ["-o", f"type=local,dest={work / 'out'}"]
            first = _buildx(ctx, "--progress", "rawjson", *out)
            (OUT / "rawjson-build.jsonl").write_text(first.stderr.replace(server.host,
                                                                          "REGISTRY"))
            cached = _buildx(ctx, "--progress", "rawjson", *out)
            (OUT / "rawjson-cached.jsonl").write_text(cached.stderr.replace(server.host,
                                                                            "REGISTRY"))
            plain = _buildx(ctx, "--progress", "plain", *out)
            (OUT / "plain-cached.txt").write_text(plain.stderr.replace(server.host,
                                                                       "REGISTRY"))
            errors = {}
            for name, dockerfile in ERROR_CASES.items():
                c = work / name
                _write(c, dockerfile, base)
                r = _buildx(c, "--progress", "plain")
                errors[name] = {"exit": r.returncode,
                                "block": context_block(r.stderr.replace(base, "{BASE}"))}
            (OUT / "errors.json").write_text(json.dumps(errors, indent=2) + "\n")
        finally:
            server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
