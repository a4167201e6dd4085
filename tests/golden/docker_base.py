"""The test busybox base image as a ``docker load`` tar, built from the same layer bytes as the
OCI layout in ``tests.images`` so that docker and bkpy start from an identical root filesystem."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from tests.images import busybox_layer


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = 0o644
    ti.mtime = 1_600_000_000
    tf.addfile(ti, io.BytesIO(data))


def write_busybox_docker_tar(dest: Path, ref: str = "busybox:latest",
                             arch: str = "amd64") -> Path:
    """Write a ``docker save``-format tar (manifest.json + config + layer.tar) tagged ``ref``."""
    layer = busybox_layer(arch)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    # Same config document as tests.images writes into the OCI layout.
    config = json.dumps({
        "architecture": arch, "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2020-09-13T12:26:40Z", "created_by": "busybox layer"}],
    }, separators=(",", ":")).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_dir = diff_id.split(":")[1]
    manifest = [{"Config": config_name, "RepoTags": [ref], "Layers": [f"{layer_dir}/layer.tar"]}]
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tf:
        _add(tf, config_name, config)
        _add(tf, f"{layer_dir}/layer.tar", layer)
        _add(tf, "manifest.json", json.dumps(manifest).encode())
    return dest
