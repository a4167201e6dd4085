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
from buildkit_py.executor.cdi import ContainerEdits
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
    """containerd's default mounts (its /run removed, as BuildKit does)."""
    sys_opts = ["nosuid", "noexec", "nodev"] + ([] if insecure else ["ro"])
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
    ]  # fmt: skip


def cgroup_mount(*, insecure: bool) -> dict[str, Any]:
    """BuildKit's /sys/fs/cgroup, mounted after /etc/resolv.conf and /etc/hosts."""
    return {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
            "options": ["rw" if insecure else "ro", "nosuid", "noexec", "nodev"]}


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


# The OpenTelemetry exporter variables BuildKit gives every process unless the step sets
# them itself (buildkitd always has a tracing socket, mounted at TRACING_SOCKET). Its
# per-build TRACEPARENT is random, so it is left out.
TRACING_SOCKET = "/dev/otel-grpc.sock"
TRACING_ENV = (
    "OTEL_TRACES_EXPORTER=otlp",
    f"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=unix://{TRACING_SOCKET}",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc",
)


def process_env(env: list[str]) -> list[str]:
    """The process environment BuildKit's runc executor makes of a step's ``K=V`` list: the
    missing tracing variables appended, then set one by one as runc does (a variable set
    again keeps the place of its first occurrence with the new value; an entry without
    ``=`` is dropped). Without any ``PATH`` the default one comes first (a Dockerfile
    stage always has one; a bare LLB step may not)."""
    names = {e.partition("=")[0] for e in env}
    full = [*env, *(e for e in TRACING_ENV if e.partition("=")[0] not in names)]
    out: list[str] = []
    index: dict[str, int] = {}
    for entry in full:
        name, sep, _ = entry.partition("=")
        if not sep:
            continue
        if name in index:
            out[index[name]] = entry
        else:
            index[name] = len(out)
            out.append(entry)
    if "PATH" not in index:
        out.insert(0, f"PATH={DEFAULT_PATH}")
    return out


def merge_env(env: list[str], extra: dict[str, str]) -> list[str]:
    """``env`` with ``extra`` (secret variables) appended, as BuildKit appends them to the
    step's env; a name already set keeps its place and takes the new value
    (:func:`process_env`)."""
    return [*env, *(f"{k}={v}" for k, v in extra.items())]


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
    tracing_socket: Path | None = None
    mounts: list[dict[str, Any]] = field(default_factory=list)
    ulimits: list[tuple[str, int, int]] = field(default_factory=list)  # (name, soft, hard)
    devices: ContainerEdits | None = None  # CDI devices (RUN --device)
    annotations: dict[str, str] = field(default_factory=dict)  # e.g. the step's name


def _rlimits(ulimits: list[tuple[str, int, int]]) -> list[dict[str, Any]]:
    if not ulimits:
        return [{"type": "RLIMIT_NOFILE", "hard": _NOFILE, "soft": _NOFILE}]
    # -1 (unlimited) as the runtime spec's uint64 reads it
    return [{"type": f"RLIMIT_{name.upper()}", "hard": hard % 2**64, "soft": soft % 2**64}
            for name, soft, hard in ulimits]


def dedup_mounts(mounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A later mount at the same destination takes the earlier one's place (BuildKit's
    rule), so e.g. ``--shm-size``'s tmpfs replaces the default /dev/shm."""
    out: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for m in mounts:
        dest = m["destination"]
        if dest in index:
            out[index[dest]] = m
        else:
            index[dest] = len(out)
            out.append(m)
    return out


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
                           "options": ["nosuid", "noexec", "nodev", "rbind", "ro"]})  # fmt: skip
    mounts.append(cgroup_mount(insecure=insecure))
    mounts.extend(inp.mounts)
    if inp.tracing_socket is not None:
        mounts.append({"destination": TRACING_SOCKET, "type": "bind",
                       "source": str(inp.tracing_socket), "options": ["ro", "rbind"]})

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

    spec = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": {
                "uid": inp.identity.uid,
                "gid": inp.identity.gid,
                "additionalGids": list(inp.identity.additional_gids),
            },
            "args": list(inp.args),
            "env": process_env(inp.env),
            "cwd": inp.cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": _rlimits(inp.ulimits),
            "noNewPrivileges": False,
        },
        "root": {"path": str(inp.rootfs), "readonly": inp.readonly_rootfs},
        "hostname": inp.hostname,
        "mounts": dedup_mounts(mounts),
        "linux": linux,
    }
    if inp.annotations:
        spec["annotations"] = dict(inp.annotations)
    if inp.devices is not None:
        inp.devices.apply(spec)
    return spec
