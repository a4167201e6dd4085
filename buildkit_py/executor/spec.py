"""Build the OCI runtime ``config.json`` for one RUN step, the way BuildKit's runc executor does.

Networking: we provide no bridge/CNI networking. ``default`` and ``none`` both get a fresh
network namespace with only loopback (the runtime brings ``lo`` up); ``host`` shares the
host's network namespace.
"""

from __future__ import annotations

import os
import resource
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildkit_py.errors import BuildError
from buildkit_py.executor.seccomp_default import default_profile
from buildkit_py.executor.user import Identity

OCI_VERSION = "1.0.2"
DEFAULT_HOSTNAME = "buildkitsandbox"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NETWORK_MODES = ("default", "none", "host")
SECURITY_MODES = ("sandbox", "insecure")
NOFILE_LIMIT = 1048576

# Docker's default capability set.
DEFAULT_CAPS = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

# Capability names by number (linux/capability.h).
_CAP_NAMES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)  # fmt: skip

MASKED_PATHS = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

def _allow_char(major: int, minor: int | None) -> dict[str, Any]:
    rule: dict[str, Any] = {"allow": True, "type": "c", "major": major, "access": "rwm"}
    if minor is not None:  # None: any minor
        rule["minor"] = minor
    return rule


# Deny everything, then allow the standard character devices (containerd's defaults).
_DEFAULT_DEVICE_RULES: list[dict[str, Any]] = [
    {"allow": False, "access": "rwm"},
    *(
        _allow_char(major, minor)
        for major, minor in (
            (1, 3), (1, 8), (1, 7), (5, 0), (1, 5), (1, 9), (5, 1), (136, None), (5, 2), (10, 200),
        )
    ),
]


def _bounding_caps() -> set[str]:
    """Capabilities this process can hand out (its bounding set)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("CapBnd:"):
                    mask = int(line.split()[1], 16)
                    return {
                        f"CAP_{name}" for bit, name in enumerate(_CAP_NAMES) if mask >> bit & 1
                    }
    except OSError:
        pass
    return {f"CAP_{name}" for name in _CAP_NAMES}


def all_capabilities() -> list[str]:
    """All capabilities the kernel knows that we hold in our bounding set (for insecure)."""
    bounding = _bounding_caps()
    return [f"CAP_{n}" for n in _CAP_NAMES if f"CAP_{n}" in bounding]


def _nofile_limit() -> int:
    # Raising the hard limit needs CAP_SYS_RESOURCE; without it we cap at our own hard limit.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if "CAP_SYS_RESOURCE" in _bounding_caps() and os.geteuid() == 0:
        return NOFILE_LIMIT
    if hard == resource.RLIM_INFINITY:
        return NOFILE_LIMIT
    return min(NOFILE_LIMIT, hard)


_NOFILE = _nofile_limit()
_HAS_CGROUPNS = os.path.exists("/proc/self/ns/cgroup")


def default_mounts(*, insecure: bool) -> list[dict[str, Any]]:
    sys_opts = ["nosuid", "noexec", "nodev"] + ([] if insecure else ["ro"])
    cgroup_opts = ["nosuid", "noexec", "nodev", "relatime", "rw" if insecure else "ro"]
    return [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": cgroup_opts},
    ]  # fmt: skip


_HOST_DEV_SKIP_DIRS = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts"}


def host_devices(root: str = "/dev") -> list[dict[str, Any]]:
    """Host device nodes, for ``security=insecure`` (privileged) containers."""
    out: list[dict[str, Any]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == root:
            dirnames[:] = [d for d in dirnames if d not in _HOST_DEV_SKIP_DIRS]
        for name in filenames:
            path = os.path.join(dirpath, name)
            if path == "/dev/console":
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode):
                kind = "c"
            elif stat.S_ISBLK(st.st_mode):
                kind = "b"
            else:
                continue
            out.append({
                "path": path, "type": kind,
                "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid,
            })  # fmt: skip
    return out


def with_default_path(env: list[str]) -> list[str]:
    if any(e.startswith("PATH=") for e in env):
        return list(env)
    return [f"PATH={DEFAULT_PATH}", *env]


def merge_env(env: list[str], extra: dict[str, str]) -> list[str]:
    """Apply ``extra`` over ``env`` (``K=V`` list), replacing variables of the same name."""
    if not extra:
        return list(env)
    out = [e for e in env if e.partition("=")[0] not in extra]
    out.extend(f"{k}={v}" for k, v in extra.items())
    return out


@dataclass
class SpecInput:
    rootfs: Path
    args: list[str]
    env: list[str]
    cwd: str
    identity: Identity
    hostname: str = DEFAULT_HOSTNAME
    network: str = "default"
    security: str = "sandbox"
    readonly_rootfs: bool = False
    hosts_file: Path | None = None
    resolv_conf: Path | None = None
    mounts: list[dict[str, Any]] = field(default_factory=list)


def build_spec(inp: SpecInput) -> dict[str, Any]:
    if inp.network not in NETWORK_MODES:
        raise BuildError(f"invalid network mode {inp.network!r} (want one of {NETWORK_MODES})")
    if inp.security not in SECURITY_MODES:
        raise BuildError(f"invalid security mode {inp.security!r} (want one of {SECURITY_MODES})")
    if not inp.args:
        raise BuildError("cannot run an empty command")
    insecure = inp.security == "insecure"
    caps = all_capabilities() if insecure else list(DEFAULT_CAPS)

    mounts = default_mounts(insecure=insecure)
    for dest, src in (("/etc/resolv.conf", inp.resolv_conf), ("/etc/hosts", inp.hosts_file)):
        if src is not None:
            mounts.append({"destination": dest, "type": "bind", "source": str(src),
                           "options": ["rbind", "ro"]})  # fmt: skip
    mounts.extend(inp.mounts)

    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if inp.network != "host":
        namespaces.append({"type": "network"})
    if _HAS_CGROUPNS:
        namespaces.append({"type": "cgroup"})

    linux: dict[str, Any] = {"namespaces": namespaces}
    if insecure:
        linux["resources"] = {"devices": [{"allow": True, "access": "rwm"}]}
        linux["devices"] = host_devices()
    else:
        linux["resources"] = {"devices": [dict(r) for r in _DEFAULT_DEVICE_RULES]}
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
        linux["seccomp"] = default_profile(caps)  # BuildKit: none for security=insecure

    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": {
                "uid": inp.identity.uid,
                "gid": inp.identity.gid,
                "additionalGids": list(inp.identity.additional_gids),
            },
            "args": list(inp.args),
            "env": with_default_path(inp.env),
            "cwd": inp.cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": _NOFILE, "soft": _NOFILE}],
            "noNewPrivileges": False,
        },
        "root": {"path": str(inp.rootfs), "readonly": inp.readonly_rootfs},
        "hostname": inp.hostname,
        "mounts": mounts,
        "linux": linux,
    }
