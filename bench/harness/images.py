"""Base images for the benchmark, written as ``docker save`` archives.

The archives are copied into the run's registry (``base_registry.py``) and both builders
pull the very same layers from it. Nothing comes from the internet: busybox comes from the
static binaries the tests use, and the C toolchain image is assembled from the host's
``tcc``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from buildkit_py.errors import UserError

BUSYBOX = {"amd64": Path("/var/cache/bkpy-test/busybox-amd64"),
           "arm64": Path("/var/cache/bkpy-test/busybox-arm64")}
APPLETS = ("sh", "ls", "cat", "echo", "mkdir", "rm", "touch", "true", "false", "sleep", "uname",
           "env", "grep", "wc", "ln", "stat", "chmod", "cp", "mv", "test", "head", "tail", "sed",
           "sort", "find", "printf", "dd", "tr", "seq", "md5sum", "sha256sum", "sha1sum", "cut",
           "tar", "xargs", "du", "yes", "gzip", "expr")
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"
_MTIME = 1_600_000_000
TCC_DIR = Path("/usr/lib/x86_64-linux-gnu/tcc")
# Dynamic libraries tcc itself needs, plus what its output links against.
_TOOLCHAIN_LIBS = ("/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libm.so.6",
                   "/lib/x86_64-linux-gnu/libpthread.so.0", "/lib/x86_64-linux-gnu/libdl.so.2",
                   "/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                   "/usr/lib/x86_64-linux-gnu/crt1.o",
                   "/usr/lib/x86_64-linux-gnu/crti.o", "/usr/lib/x86_64-linux-gnu/crtn.o",
                   "/usr/lib/x86_64-linux-gnu/libc.so",
                   "/usr/lib/x86_64-linux-gnu/libc_nonshared.a")
# Debian packages whose /usr/include files make up the toolchain's headers.
_HEADER_PACKAGES = ("libc6-dev", "linux-libc-dev")


class ToolchainMissing(UserError):
    """The host lacks ``tcc`` (Debian package ``tcc``) for the C-compile case."""


@dataclass(frozen=True)
class BaseImage:
    """A loadable archive and the tag both builders know it by."""

    tag: str
    archive: Path
    arch: str


class _LayerWriter:
    """An uncompressed layer tar built in memory, parents created on demand."""

    def __init__(self) -> None:
        self._buf = io.BytesIO()
        self._tar = tarfile.open(fileobj=self._buf, mode="w", format=tarfile.PAX_FORMAT)
        self._dirs: set[str] = set()

    def dir(self, name: str, mode: int = 0o755) -> None:
        name = name.strip("/")
        if not name or name in self._dirs:
            return
        parent = os.path.dirname(name)
        if parent:
            self.dir(parent)
        self._dirs.add(name)
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        info.mode = mode
        info.mtime = _MTIME
        self._tar.addfile(info)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        name = name.strip("/")
        self.dir(os.path.dirname(name))
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = mode
        info.mtime = _MTIME
        self._tar.addfile(info, io.BytesIO(data))

    def symlink(self, name: str, target: str) -> None:
        name = name.strip("/")
        self.dir(os.path.dirname(name))
        info = tarfile.TarInfo(name)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        info.mtime = _MTIME
        self._tar.addfile(info)

    def finish(self) -> bytes:
        self._tar.close()
        return self._buf.getvalue()


def busybox_layer(arch: str) -> bytes:
    layer = _LayerWriter()
    for d in ("bin", "etc", "root", "usr/bin", "usr/local/bin"):
        layer.dir(d)
    layer.dir("tmp", 0o1777)
    layer.file("bin/busybox", BUSYBOX[arch].read_bytes(), 0o755)
    for applet in APPLETS:
        layer.symlink(f"bin/{applet}", "busybox")
    layer.file("etc/passwd", PASSWD.encode())
    layer.file("etc/group", GROUP.encode())
    return layer.finish()


def _package_headers(package: str) -> list[Path]:
    out = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise ToolchainMissing(f"Debian package {package} is not installed",
                               hint=f"apt-get install -y {package}")
    paths = [Path(line) for line in out.stdout.splitlines() if line.startswith("/usr/include/")]
    return [p for p in paths if p.is_file() and not p.is_symlink()]


def toolchain_layer() -> bytes:
    """tcc, its runtime files, glibc's headers, crt objects and shared libraries."""
    tcc = shutil.which("tcc")
    if tcc is None or not TCC_DIR.is_dir():
        raise ToolchainMissing("the C-compile case needs the host's tcc",
                               hint="apt-get install -y tcc")
    layer = _LayerWriter()
    layer.file("usr/bin/tcc", Path(tcc).read_bytes(), 0o755)
    for path in sorted(TCC_DIR.rglob("*")):
        if path.is_file():
            layer.file(str(path), path.read_bytes())
    for lib in _TOOLCHAIN_LIBS:
        mode = 0o755 if ".so" in lib else 0o644
        layer.file(lib, Path(lib).resolve().read_bytes(), mode)
    for package in _HEADER_PACKAGES:
        for header in _package_headers(package):
            layer.file(str(header), header.read_bytes())
    return layer.finish()


# bigbase:latest's data layers (MB): large enough that pulling and unpacking them is most
# of a cold build, several so that they download and unpack in parallel.
BIGBASE_LAYERS_MB = (100, 60, 40)


def data_layer(index: int, megabytes: int) -> bytes:
    """``/data/<index>/`` with half random (incompressible) and half text bytes, in 8 MB
    files, from a fixed seed: the same bytes in every run."""
    rng = random.Random(index)
    layer = _LayerWriter()
    mb = 1 << 20
    for n in range(megabytes // 8):
        data = (rng.randbytes(4 * mb) if n % 2 == 0
                else b"".join(b"line %d of layer %d\n" % (i, index)
                              for i in range(4 * mb // 20))[:4 * mb])
        layer.file(f"data/{index}/part{n:03d}", data + data[::-1])
    return layer.finish()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_docker_archive(dest: Path, tag: str, layers: list[bytes], arch: str) -> Path:
    """A ``docker save``-format tar (manifest.json, config, one tar per layer)."""
    diff_ids = [f"sha256:{_digest(raw)}" for raw in layers]
    config = json.dumps({
        "architecture": arch, "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2020-09-13T12:26:40Z", "created_by": f"bench layer {i}"}
                    for i in range(len(layers))],
        "created": "2020-09-13T12:26:40Z",
    }, separators=(",", ":")).encode()
    config_name = f"{_digest(config)}.json"
    layer_names = [f"{d.split(':')[1]}/layer.tar" for d in diff_ids]
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": layer_names}])
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in ((config_name, config), *zip(layer_names, layers, strict=True),
                           ("manifest.json", manifest.encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = _MTIME
            tar.addfile(info, io.BytesIO(data))
    return dest


def prepare_base_images(work: Path, *, toolchain: bool, bigbase: bool = False
                        ) -> list[BaseImage]:
    """busybox:latest and busybox:<arch> for amd64/arm64; toolchain:latest and
    bigbase:latest if asked."""
    images: list[BaseImage] = []
    amd64 = busybox_layer("amd64")
    images.append(BaseImage("busybox:latest",
                            write_docker_archive(work / "busybox-latest.tar", "busybox:latest",
                                                 [amd64], "amd64"), "amd64"))
    for arch in ("amd64", "arm64"):
        layer = amd64 if arch == "amd64" else busybox_layer(arch)
        images.append(BaseImage(f"busybox:{arch}",
                                write_docker_archive(work / f"busybox-{arch}.tar",
                                                     f"busybox:{arch}", [layer], arch), arch))
    if toolchain:
        images.append(BaseImage("toolchain:latest",
                                write_docker_archive(work / "toolchain.tar", "toolchain:latest",
                                                     [amd64, toolchain_layer()], "amd64"),
                                "amd64"))
    if bigbase:
        layers = [amd64, *(data_layer(i, mb) for i, mb in enumerate(BIGBASE_LAYERS_MB))]
        images.append(BaseImage("bigbase:latest",
                                write_docker_archive(work / "bigbase.tar", "bigbase:latest",
                                                     layers, "amd64"), "amd64"))
    return images
