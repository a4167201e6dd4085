"""Base images for tests, made locally from Debian's static busybox (no registry needed)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

BUSYBOX = {"amd64": Path("/var/cache/bkpy-test/busybox-amd64"),
           "arm64": Path("/var/cache/bkpy-test/busybox-arm64")}
APPLETS = ["sh", "ls", "cat", "echo", "id", "mkdir", "rm", "touch", "true", "false", "sleep",
           "uname", "env", "pwd", "grep", "wc", "ln", "stat", "chmod", "cp", "mv", "test",
           "hostname", "head", "tail", "sed", "sort", "find", "whoami", "printf", "dd", "tr",
           "date", "seq", "md5sum", "sha256sum", "cut", "ip", "mount", "readlink", "tar", "xargs"]
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n" \
         "app:x:1000:1000:app:/home/app:/bin/sh\n"
GROUP = "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nstaff:x:50:app\n"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def busybox_layer(arch: str) -> bytes:
    """An uncompressed layer tar: /bin/busybox, applet symlinks, /etc/passwd and group."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        def add_dir(name: str, mode: int = 0o755) -> None:
            ti = tarfile.TarInfo(name)
            ti.type = tarfile.DIRTYPE
            ti.mode = mode
            ti.mtime = 1_600_000_000
            tf.addfile(ti)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = mode
            ti.mtime = 1_600_000_000
            tf.addfile(ti, io.BytesIO(data))

        for d in ("bin", "etc", "tmp", "root", "home", "home/app", "usr", "usr/bin"):
            add_dir(d, 0o1777 if d == "tmp" else 0o755)
        add_file("bin/busybox", BUSYBOX[arch].read_bytes(), 0o755)
        for applet in APPLETS:
            ti = tarfile.TarInfo(f"bin/{applet}")
            ti.type = tarfile.SYMTYPE
            ti.linkname = "busybox"
            ti.mtime = 1_600_000_000
            tf.addfile(ti)
        add_file("etc/passwd", PASSWD.encode())
        add_file("etc/group", GROUP.encode())
    return buf.getvalue()


def write_busybox_layout(dest: Path, arches: tuple[str, ...] = ("amd64",)) -> Path:
    """An OCI image layout folder holding busybox for ``arches`` (an index when several)."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> str:
        d = _digest(data)
        (blobs / d.split(":")[1]).write_bytes(data)
        return d

    manifests = []
    for arch in arches:
        raw = busybox_layer(arch)
        gz = gzip.compress(raw, mtime=0)
        layer_digest = put(gz)
        config = json.dumps({
            "architecture": arch, "os": "linux",
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                       "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [_digest(raw)]},
            "history": [{"created": "2020-09-13T12:26:40Z", "created_by": "busybox layer"}],
        }, separators=(",", ":")).encode()
        config_digest = put(config)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer_digest, "size": len(gz)}],
        }, separators=(",", ":")).encode()
        manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "digest": put(manifest), "size": len(manifest),
                          "platform": {"architecture": arch, "os": "linux"}})
    if len(manifests) > 1:
        index_doc = json.dumps({"schemaVersion": 2,
                                "mediaType": "application/vnd.oci.image.index.v1+json",
                                "manifests": manifests}, separators=(",", ":")).encode()
        top = [{"mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": put(index_doc), "size": len(index_doc)}]
    else:
        top = manifests
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": top}))
    return dest


def push_layout(layout: Path, repo: str) -> str:
    """Copy the layout's image to ``repo:latest`` on a plain-HTTP registry; ``repo``."""
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}",
                    f"docker://{repo}:latest"], check=True, timeout=120)
    return repo
