"""The default /dev contents every OCI container gets (runtime-spec config-linux.md)."""

from __future__ import annotations

import os
import stat

from . import paths
from . import syscalls as sc
from .errors import RuntimeFailure

# (path, type, major, minor): all mode 0666, owned by root.
DEFAULT_DEVICES = (
    ("/dev/null", "c", 1, 3), ("/dev/zero", "c", 1, 5), ("/dev/full", "c", 1, 7),
    ("/dev/random", "c", 1, 8), ("/dev/urandom", "c", 1, 9), ("/dev/tty", "c", 5, 0),
)
_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~15 ms of start-up; annotations are lazy
    from typing import Any


def create(root: str, extra: list[dict[str, Any]]) -> None:
    """mknod the default and spec devices; bind the host node when mknod is refused."""
    wanted: list[tuple[str, str, int, int, int, int, int]] = [
        (p, t, ma, mi, 0o666, 0, 0) for p, t, ma, mi in DEFAULT_DEVICES]
    for d in extra:
        wanted.append((d["path"], d.get("type", "c"), int(d.get("major", 0)),
                       int(d.get("minor", 0)), int(d.get("fileMode", 0o666)),
                       int(d.get("uid", 0)), int(d.get("gid", 0))))
    for path, kind, major, minor, mode, uid, gid in wanted:
        if kind not in _TYPES:
            raise RuntimeFailure(f"create device {path}", f"unknown device type {kind!r}")
        host = paths.resolve(root, path)
        try:
            paths.makedirs(os.path.dirname(host))
            paths.check_inside(root, host, f"create device {path}")
            if os.path.lexists(host):
                continue  # like runc: a node already in the rootfs is kept
            try:
                os.mknod(host, _TYPES[kind] | (mode & 0o7777), os.makedev(major, minor))
                os.chown(host, uid, gid)
            except PermissionError:
                if not os.path.exists(path):
                    raise
                os.close(os.open(host, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
                sc.mount(path, host, None, sc.MS_BIND)
        except RuntimeFailure:
            raise
        except OSError as e:
            raise RuntimeFailure(f"create device {path}", e) from None


def create_symlinks(root: str) -> None:
    links = [*SYMLINKS, ("pts/ptmx", "/dev/ptmx")]
    if os.path.exists("/proc/kcore"):
        links.append(("/proc/kcore", "/dev/core"))
    for target, path in links:
        host = paths.resolve(root, path)
        try:
            if path == "/dev/ptmx" and os.path.lexists(host):
                os.unlink(host)
            os.symlink(target, host)
        except FileExistsError:
            pass
        except OSError as e:
            raise RuntimeFailure(f"symlink {path}", e) from None
