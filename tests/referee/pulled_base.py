"""A layered base image pulled from a registry, for comparing what bkpy and the referee
unpack (recorded by scripts/record-referee-pull.py into testdata/referee-pull/, checked by
tests/e2e/test_pull_referee.py).

The corpus's base (``busybox``) arrives as an OCI layout; this one is pulled, so its
layers go through the download, the streamed unpack that follows the content store's
ingest file, and gzip inflate. Its layers, gzip-compressed and deterministic: busybox; a
``/data`` tree with a 6 MiB file (many download chunks), owners, modes, a setuid file,
a hard link, a symlink and directories; then whiteouts, an opaque directory and a file
replaced with another mode. The build's RUN writes what it sees of that tree into the
image, so the observation covers the unpacked snapshot, not only the layers passed on.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

from tests.images import busybox_layer

REPO = Path(__file__).resolve().parents[2]
EXPECTED = REPO / "testdata" / "referee-pull" / "expected.json"
IMAGE = "rr/layered:1"
DOCKERFILE = (
    "FROM {host}/" + IMAGE + "\n"
    "RUN find /data /opt -exec stat -c '%n %F %a %u:%g %s %h' {{}} + | sort > /tree.txt"
    " && sha256sum /data/big.bin /data/keep.txt /data/tool > /sums.txt\n"
)
PLATFORMS = ["linux/amd64"]
_MTIME = 1_600_000_000


def _layer(build: Callable[[tarfile.TarFile], None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        build(tf)
    return buf.getvalue()


def _add(tf: tarfile.TarFile, name: str, data: bytes | None = None, *, mode: int = 0o644,
         kind: bytes = tarfile.REGTYPE, owner: tuple[int, int] = (0, 0), link: str = "") -> None:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.uid, ti.gid = owner
    ti.mtime = _MTIME
    ti.linkname = link
    if data is not None:
        ti.size = len(data)
    tf.addfile(ti, io.BytesIO(data) if data is not None else None)


def _data_layer(tf: tarfile.TarFile) -> None:
    rng = random.Random(17)
    big = rng.randbytes(3 << 20) + b"".join(b"line %d\n" % i for i in range(400_000))[:3 << 20]
    _add(tf, "data", kind=tarfile.DIRTYPE, mode=0o755)
    _add(tf, "data/big.bin", big)
    _add(tf, "data/keep.txt", b"kept\n", mode=0o600, owner=(1000, 1000))
    _add(tf, "data/old.txt", b"old\n")
    _add(tf, "data/tool", b"#!/bin/sh\necho tool\n", mode=0o4755)
    _add(tf, "data/tool.hl", kind=tarfile.LNKTYPE, mode=0o4755, link="data/tool")
    _add(tf, "data/link", kind=tarfile.SYMTYPE, mode=0o777, link="keep.txt")
    _add(tf, "data/gone", kind=tarfile.DIRTYPE, mode=0o750, owner=(1000, 50))
    _add(tf, "data/gone/a.txt", b"a\n")
    _add(tf, "opt", kind=tarfile.DIRTYPE, mode=0o755)
    _add(tf, "opt/x", kind=tarfile.DIRTYPE, mode=0o755)
    _add(tf, "opt/x/b.txt", b"b\n")
    _add(tf, "opt/y.txt", b"y\n", mode=0o640, owner=(65534, 65534))


def _change_layer(tf: tarfile.TarFile) -> None:
    _add(tf, "data", kind=tarfile.DIRTYPE, mode=0o755)
    _add(tf, "data/.wh.old.txt", b"")
    _add(tf, "data/gone", kind=tarfile.DIRTYPE, mode=0o700)
    _add(tf, "data/gone/.wh..wh..opq", b"")
    _add(tf, "data/gone/new.txt", b"new\n", owner=(1000, 1000))
    _add(tf, "data/keep.txt", b"kept again\n", mode=0o640, owner=(1000, 50))
    _add(tf, "opt", kind=tarfile.DIRTYPE, mode=0o755)
    _add(tf, "opt/.wh.x", b"")


def write_layered_layout(dest: Path) -> Path:
    """The base image as an OCI layout folder (amd64, three gzip layers)."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    raws = [busybox_layer("amd64"), _layer(_data_layer), _layer(_change_layer)]
    layers = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
               **put(gzip.compress(raw, mtime=0))} for raw in raws]
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["sh"]},
        "rootfs": {"type": "layers",
                   "diff_ids": [f"sha256:{hashlib.sha256(r).hexdigest()}" for r in raws]},
        "history": [{"created": "2020-09-13T12:26:40Z", "created_by": f"layer {i}"}
                    for i in range(len(raws))],
    }, separators=(",", ":")).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **put(config)},
        "layers": layers,
    }, separators=(",", ":")).encode()
    top = {"mediaType": "application/vnd.oci.image.manifest.v1+json", **put(manifest)}
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    return dest


def push_base(layout: Path, host: str) -> None:
    """Copy the layout's image to ``host`` (a plain-HTTP registry) as :data:`IMAGE`."""
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}",
                    f"docker://{host}/{IMAGE}"], check=True, timeout=120)


def build_args(ctx: Path, out: Path) -> list[str]:
    """What both builders are given (after ``build`` / ``docker-buildx build``)."""
    return ["--progress", "plain", "--network", "none", "--platform", ",".join(PLATFORMS),
            "--output", f"type=oci,dest={out}", str(ctx)]
