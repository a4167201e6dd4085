"""Foreign-architecture RUN steps through qemu-user and binfmt_misc.

A step for another architecture runs only if the kernel has a binfmt_misc handler whose
magic/mask matches that architecture's ELF header. When none is registered but Debian's
``qemu-user-static`` emulator is installed and we are root, we register it with the ``F``
flag (the kernel opens the interpreter at registration, so it works inside containers).

Architecture names are spelled by :func:`buildkit_py.platforms.arch_of`; this module only
maps canonical architectures to qemu's names and ELF magic (:data:`ARCHES`).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildkit_py.errors import BuildError
from buildkit_py.platforms import arch_of, host_platform

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
INSTALL_HINT = "install an emulator: apt-get install qemu-user-static"


@dataclass(frozen=True)
class ArchInfo:
    qemu: str  # qemu's name for the architecture
    magic: bytes  # ELF header bytes identifying e_machine (as in qemu-binfmt-conf)
    mask: bytes
    variants: tuple[str, ...] = ()  # platform variants this emulator runs


def _hex(text: str) -> bytes:
    return bytes.fromhex(text)


_ELF64_MASK = _hex("ffffffffffffff00fffffffffffffffffeffffff")
ARCHES: dict[str, ArchInfo] = {
    "amd64": ArchInfo(
        "x86_64",
        _hex("7f454c4602010100000000000000000002003e00"),
        _hex("fffffffffffefe00fffffffffffffffffeffffff"),
    ),
    "arm64": ArchInfo("aarch64", _hex("7f454c460201010000000000000000000200b700"), _ELF64_MASK),
    "arm": ArchInfo(
        "arm", _hex("7f454c4601010100000000000000000002002800"), _ELF64_MASK, ("v7", "v6")
    ),
    "386": ArchInfo(
        "i386",
        _hex("7f454c4601010100000000000000000002000300"),
        _hex("fffffffffffefe00fffffffffffffffffeffffff"),
    ),
    "ppc64le": ArchInfo(
        "ppc64le",
        _hex("7f454c4602010100000000000000000002001500"),
        _hex("ffffffffffffff00fffffffffffffffffeffff00"),
    ),
    "s390x": ArchInfo(
        "s390x",
        _hex("7f454c4602020100000000000000000000020016"),
        _hex("ffffffffffffff00fffffffffffffffffffeffff"),
    ),
    "riscv64": ArchInfo("riscv64", _hex("7f454c460201010000000000000000000200f300"), _ELF64_MASK),
}

# Architectures a host runs without emulation.
_NATIVE_EXTRA = {"amd64": ("386",)}


def host_arch() -> str:
    return host_platform().architecture


def parse_platform(value: Any) -> tuple[str, str, str]:
    """``(os, arch, variant)`` from a string (``linux/arm64/v8``, ``arm64``), a tuple, or an
    object with ``os``/``architecture``/``variant`` attributes."""
    if isinstance(value, str):
        parts = value.split("/")
        if len(parts) == 1:
            parts = ["linux", parts[0]]
        os_name, arch, variant = [*parts, "", ""][:3]
    elif isinstance(value, tuple | list):
        os_name, arch, variant = [*value, "", ""][:3]
    else:
        os_name = getattr(value, "os", "linux")
        arch = getattr(value, "architecture", getattr(value, "arch", ""))
        variant = getattr(value, "variant", "") or ""
    return (str(os_name or "linux"), *arch_of(str(arch), str(variant or "")))


def native_arches() -> tuple[str, ...]:
    host = host_arch()
    return (host, *_NATIVE_EXTRA.get(host, ()))


@dataclass(frozen=True)
class BinfmtEntry:
    name: str
    enabled: bool
    interpreter: str
    flags: str
    offset: int
    magic: bytes
    mask: bytes | None

    def matches(self, header: bytes) -> bool:
        if not self.enabled or not self.magic:
            return False
        chunk = header[self.offset : self.offset + len(self.magic)]
        if len(chunk) < len(self.magic):
            return False
        mask = self.mask or b"\xff" * len(self.magic)
        return all((c ^ m) & k == 0 for c, m, k in zip(chunk, self.magic, mask, strict=False))


def read_entries(binfmt_dir: Path = BINFMT_DIR) -> list[BinfmtEntry]:
    """The registered magic-type handlers; empty when binfmt_misc is absent or disabled."""
    try:
        if (binfmt_dir / "status").read_text().strip() != "enabled":
            return []
        names = os.listdir(binfmt_dir)
    except OSError:
        return []
    out = []
    for name in names:
        if name in ("register", "status"):
            continue
        try:
            text = (binfmt_dir / name).read_text()
        except OSError:
            continue
        fields: dict[str, str] = {}
        enabled = False
        for line in text.splitlines():
            if line in ("enabled", "disabled"):
                enabled = line == "enabled"
                continue
            key, _, value = line.partition(" ")
            fields[key.rstrip(":")] = value.strip()
        if "magic" not in fields:
            continue  # extension-type entry
        try:
            magic = bytes.fromhex(fields["magic"])
            mask = bytes.fromhex(fields["mask"]) if "mask" in fields else None
            offset = int(fields.get("offset", "0"))
        except ValueError:
            continue
        out.append(
            BinfmtEntry(name, enabled, fields.get("interpreter", ""), fields.get("flags", ""),
                        offset, magic, mask)
        )  # fmt: skip
    return out


def find_handler(arch: str, binfmt_dir: Path = BINFMT_DIR) -> BinfmtEntry | None:
    info = ARCHES.get(arch_of(arch)[0])
    if info is None:
        return None
    for entry in read_entries(binfmt_dir):
        if entry.matches(info.magic):
            return entry
    return None


def _escape(data: bytes) -> str:
    return "".join(f"\\x{b:02x}" for b in data)


def register_handler(
    arch: str,
    interpreter: Path,
    *,
    name: str | None = None,
    flags: str = "F",
    binfmt_dir: Path = BINFMT_DIR,
) -> str:
    """Register ``interpreter`` for ``arch``; returns the entry name."""
    info = ARCHES[arch_of(arch)[0]]
    name = name or f"qemu-{info.qemu}"
    if not (binfmt_dir / "register").exists():
        subprocess.run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt_dir)],
            check=True, capture_output=True, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    entry = binfmt_dir / name
    if entry.exists():
        entry.write_text("1")  # present but disabled: enable it
        return name
    line = f":{name}:M:0:{_escape(info.magic)}:{_escape(info.mask)}:{interpreter}:{flags}"
    with open(binfmt_dir / "register", "w") as fh:
        fh.write(line)
    return name


def unregister_handler(name: str, binfmt_dir: Path = BINFMT_DIR) -> None:
    with contextlib.suppress(FileNotFoundError):
        (binfmt_dir / name).write_text("-1")


EMULATOR_DIR = Path("/usr/bin")
_ready: set[tuple[str, Path]] = set()
_lock = threading.Lock()


def emulator_path(arch: str, emulator_dir: Path = EMULATOR_DIR) -> Path:
    """Where Debian's qemu-user-static puts the emulator for ``arch``."""
    return emulator_dir / f"qemu-{ARCHES[arch].qemu}-static"


def ensure_platform(
    platform: Any, binfmt_dir: Path = BINFMT_DIR, emulator_dir: Path = EMULATOR_DIR
) -> None:
    """Make sure steps for ``platform`` can run here, registering qemu if needed and allowed."""
    os_name, arch, _variant = parse_platform(platform)
    if os_name != "linux":
        raise BuildError(f"cannot run steps for {os_name}/{arch}: only linux is supported")
    if arch in native_arches() or (arch, binfmt_dir) in _ready:
        return
    if arch not in ARCHES:
        raise BuildError(
            f"cannot run steps for linux/{arch}: no emulation support for this architecture",
            hint=f"supported: {', '.join(sorted(ARCHES))}",
        )
    with _lock:
        if find_handler(arch, binfmt_dir) is None:
            static = emulator_path(arch, emulator_dir)
            if not static.exists() or os.geteuid() != 0:
                why = "not root" if static.exists() else f"{static} not found"
                raise BuildError(
                    f"cannot run steps for linux/{arch}: no binfmt_misc handler for "
                    f"{ARCHES[arch].qemu} is registered ({why})",
                    hint=INSTALL_HINT,
                )
            # Debian's wrapper name tells qemu the kernel preserved argv[0] (flag P), which
            # busybox-style multi-call binaries need to find their applet.
            wrapper = Path("/usr/libexec/qemu-binfmt") / f"{ARCHES[arch].qemu}-binfmt-P"
            interpreter, flags = (wrapper, "OPF") if wrapper.exists() else (static, "F")
            try:
                register_handler(arch, interpreter, binfmt_dir=binfmt_dir, flags=flags)
            except (OSError, subprocess.CalledProcessError) as exc:
                raise BuildError(
                    f"cannot register {static} in binfmt_misc for linux/{arch}: {exc}",
                    hint=INSTALL_HINT,
                ) from exc
            if find_handler(arch, binfmt_dir) is None:
                raise BuildError(
                    f"registered {static} for linux/{arch} but binfmt_misc does not list it",
                    hint=INSTALL_HINT,
                )
        _ready.add((arch, binfmt_dir))


def emulated_platforms(binfmt_dir: Path = BINFMT_DIR) -> list[str]:
    """Platforms runnable here through a registered binfmt_misc emulator (for worker info)."""
    native = native_arches()
    entries = read_entries(binfmt_dir)
    out: list[str] = []
    for arch, info in ARCHES.items():
        if arch in native:
            continue
        if any(e.matches(info.magic) for e in entries):
            if info.variants:
                out.extend(f"linux/{arch}/{v}" for v in info.variants)
            else:
                out.append(f"linux/{arch}")
    return out
