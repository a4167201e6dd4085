"""Building busybox OCI bundles for runtime tests and the runtime benchmark."""

from __future__ import annotations

import copy
import json
import os
import shutil
from typing import Any

BUSYBOX = {
    "amd64": "/var/cache/bkpy-test/busybox-amd64",
    "arm64": "/var/cache/bkpy-test/busybox-arm64",
}
APPLETS = (
    "sh", "true", "false", "id", "cat", "ls", "hostname", "env", "pwd", "ip", "kill", "sleep",
    "ps", "uname", "grep", "echo", "touch", "mkdir", "stat", "awk", "sort", "cut", "head",
    "readlink", "test", "wc", "tr", "sed", "mount", "nproc", "printf",
)
# Docker's (and BuildKit's) default capability set.
DOCKER_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]
MASKED = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
]
READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def make_rootfs(parent: str, arch: str = "amd64") -> str:
    """A minimal busybox root: /bin applets as symlinks, /etc/passwd and /etc/group."""
    root = os.path.join(parent, f"rootfs-{arch}")
    os.makedirs(os.path.join(root, "bin"), exist_ok=True)
    os.makedirs(os.path.join(root, "etc"), exist_ok=True)
    os.makedirs(os.path.join(root, "tmp"), mode=0o1777, exist_ok=True)
    os.makedirs(os.path.join(root, "home", "user"), exist_ok=True)
    os.chown(os.path.join(root, "home", "user"), 1000, 1000)
    shutil.copy2(BUSYBOX[arch], os.path.join(root, "bin", "busybox"))
    for applet in APPLETS:
        os.symlink("busybox", os.path.join(root, "bin", applet))
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n"
                "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    with open(os.path.join(root, "etc", "group"), "w") as f:
        f.write("root:x:0:\ntty:x:5:\nuser:x:1000:\nextra:x:2000:user\nother:x:3000:\n"
                "nogroup:x:65534:\n")
    return root


def config(rootfs: str, args: list[str], **over: Any) -> dict[str, Any]:
    """A BuildKit-like config.json (reference §7.2) for ``args``; ``over`` patches keys."""
    cfg: dict[str, Any] = {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": [f"PATH={PATH}"],
            "cwd": "/",
            "capabilities": {k: list(DOCKER_CAPS)
                             for k in ("bounding", "effective", "permitted")},
            "noNewPrivileges": False,
        },
        "root": {"path": rootfs, "readonly": False},
        "hostname": "buildkitsandbox",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                         "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["ro", "nosuid", "noexec", "nodev"]},
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")],
            "maskedPaths": list(MASKED),
            "readonlyPaths": list(READONLY),
        },
    }
    for key, value in over.items():
        node = cfg
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = copy.deepcopy(value)
    return cfg


def write_bundle(parent: str, name: str, cfg: dict[str, Any]) -> str:
    bundle = os.path.join(parent, name)
    os.makedirs(bundle, mode=0o711, exist_ok=True)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    return bundle
