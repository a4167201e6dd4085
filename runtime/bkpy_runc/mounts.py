"""Building the container's filesystem view inside its new mount namespace.

Everything here runs in the container's own mount namespace after the root has been
made slave/private, so no mount propagates back to the host.
"""

from __future__ import annotations

import os
import stat

from . import cgroups, devices, paths
from . import syscalls as sc
from .errors import RuntimeFailure

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~15 ms of start-up; annotations are lazy
    from typing import Any

# option -> (clears the flag?, flag)
_FLAGS: dict[str, tuple[bool, int]] = {
    "defaults": (False, 0), "ro": (False, sc.MS_RDONLY), "rw": (True, sc.MS_RDONLY),
    "suid": (True, sc.MS_NOSUID), "nosuid": (False, sc.MS_NOSUID),
    "dev": (True, sc.MS_NODEV), "nodev": (False, sc.MS_NODEV),
    "exec": (True, sc.MS_NOEXEC), "noexec": (False, sc.MS_NOEXEC),
    "sync": (False, sc.MS_SYNCHRONOUS), "async": (True, sc.MS_SYNCHRONOUS),
    "dirsync": (False, sc.MS_DIRSYNC), "remount": (False, sc.MS_REMOUNT),
    "mand": (False, sc.MS_MANDLOCK), "nomand": (True, sc.MS_MANDLOCK),
    "atime": (True, sc.MS_NOATIME), "noatime": (False, sc.MS_NOATIME),
    "diratime": (True, sc.MS_NODIRATIME), "nodiratime": (False, sc.MS_NODIRATIME),
    "bind": (False, sc.MS_BIND), "rbind": (False, sc.MS_BIND | sc.MS_REC),
    "relatime": (False, sc.MS_RELATIME), "norelatime": (True, sc.MS_RELATIME),
    "strictatime": (False, sc.MS_STRICTATIME), "nostrictatime": (True, sc.MS_STRICTATIME),
    "lazytime": (False, sc.MS_LAZYTIME), "nolazytime": (True, sc.MS_LAZYTIME),
    "nosymfollow": (False, sc.MS_NOSYMFOLLOW), "symfollow": (True, sc.MS_NOSYMFOLLOW),
    "silent": (False, sc.MS_SILENT), "loud": (True, sc.MS_SILENT),
}
PROPAGATION = {
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}
_IGNORED = frozenset(("tmpcopyup",))  # Docker-specific copy-up, not a mount(2) option
# statvfs f_flag bits -> MS_* flags that a bind remount must keep.
_ST_TO_MS = ((1, sc.MS_RDONLY), (2, sc.MS_NOSUID), (4, sc.MS_NODEV), (8, sc.MS_NOEXEC),
             (16, sc.MS_SYNCHRONOUS), (64, sc.MS_MANDLOCK), (1024, sc.MS_NOATIME),
             (2048, sc.MS_NODIRATIME), (4096, sc.MS_RELATIME))


def parse_options(options: list[str]) -> tuple[int, list[int], str]:
    """mount(2) flags, propagation changes and the fs-specific data string."""
    flags = 0
    prop: list[int] = []
    data: list[str] = []
    for opt in options:
        if opt in _FLAGS:
            clear, flag = _FLAGS[opt]
            flags = flags & ~flag if clear else flags | flag
        elif opt in PROPAGATION:
            prop.append(PROPAGATION[opt])
        elif opt in ("idmap", "ridmap"):
            raise RuntimeFailure("mount options", f"{opt} is not supported")
        elif opt not in _IGNORED:
            data.append(opt)
    return flags, prop, ",".join(data)


def kept_flags(path: str) -> int:
    """Flags of the mount at ``path`` that a bind remount must repeat."""
    try:
        st_flags = os.statvfs(path).f_flag
    except OSError:
        return 0
    return sum(ms for st, ms in _ST_TO_MS if st_flags & st)


class RootfsSetup:
    """Prepares ``spec.rootfs`` (mounts, devices) and switches the root into it."""

    def __init__(self, spec: Any, hierarchies: list[cgroups.Hierarchy]) -> None:
        self.spec = spec
        self.root: str = spec.rootfs
        self.hierarchies = hierarchies
        self.dev_ro = False

    def prepare(self) -> None:
        spec = self.spec
        prop = PROPAGATION.get(spec.propagation, sc.MS_SLAVE | sc.MS_REC)
        try:
            sc.mount(None, "/", None, prop)
        except OSError as e:
            raise RuntimeFailure("make / " + (spec.propagation or "rslave"), e) from None
        if prop & sc.MS_SHARED:
            self._make_parent_private()
        if not os.path.isdir(self.root):
            raise RuntimeFailure(f"rootfs {self.root}", "not a directory")
        try:
            sc.mount(self.root, self.root, "bind", sc.MS_BIND | sc.MS_REC)
        except OSError as e:
            raise RuntimeFailure(f"bind rootfs {self.root}", e) from None
        for m in spec.mounts:
            self.mount(m)
        if not any(m["destination"] == "/dev" and _is_bind(m) for m in spec.mounts):
            devices.create(self.root, spec.devices)
            devices.create_symlinks(self.root)

    def mount(self, m: dict[str, Any]) -> None:
        dest: str = m["destination"]
        what = f"mount {dest}"
        kind: str = m.get("type") or ""
        flags, prop, data = parse_options(list(m.get("options") or []))
        if kind == "cgroup":
            self._mount_cgroup(dest, flags)
            return
        try:
            if _is_bind(m):
                target = self._bind(m, dest, flags, what)
            else:
                target = paths.ensure_dir(self.root, dest, what)
                if dest == "/dev" and flags & sc.MS_RDONLY:
                    self.dev_ro = True  # devices are created first, ro is applied at the end
                    flags &= ~sc.MS_RDONLY
                sc.mount(m.get("source") or kind, target, kind, flags, data or None)
            for p in prop:
                sc.mount(None, target, None, p)
        except OSError as e:
            raise RuntimeFailure(what, e) from None

    def _bind(self, m: dict[str, Any], dest: str, flags: int, what: str) -> str:
        source: str = m.get("source") or ""
        if not os.path.isabs(source):
            source = os.path.join(self.spec.bundle, source)
        try:
            is_dir = stat.S_ISDIR(os.stat(source).st_mode)
        except OSError as e:
            raise RuntimeFailure(f"{what}: source {source}", e) from None
        if is_dir:
            target = paths.ensure_dir(self.root, dest, what)
        else:
            target = paths.ensure_file(self.root, dest, what)
        base = sc.MS_BIND | (flags & sc.MS_REC)
        sc.mount(source, target, None, base)
        if flags & ~(sc.MS_BIND | sc.MS_REC):
            sc.mount(source, target, None, flags | sc.MS_BIND | sc.MS_REMOUNT)
        return target

    def _mount_cgroup(self, dest: str, flags: int) -> None:
        what = f"mount {dest}"
        target = paths.ensure_dir(self.root, dest, what)
        hs = self.hierarchies
        try:
            if hs and not hs[0].name:
                # cgroup v2: a bind of the container's own cgroup (the cgroup namespace is
                # entered later, so a fresh cgroup2 mount here would show the host's root).
                self._bind_ro(hs[0].host_dir(), target, flags)
                return
            sc.mount("tmpfs", target, "tmpfs", flags & ~sc.MS_RDONLY, "mode=755")
            for h in hs:
                sub = os.path.join(target, h.name)
                os.mkdir(sub, 0o755)
                self._bind_ro(h.host_dir(), sub, flags)
                if "," in h.name:
                    for ctl in h.name.split(","):
                        os.symlink(h.name, os.path.join(target, ctl))
        except OSError as e:
            raise RuntimeFailure(what, e) from None

    @staticmethod
    def _bind_ro(source: str, target: str, flags: int) -> None:
        sc.mount(source, target, None, sc.MS_BIND | sc.MS_REC)
        sc.mount(source, target, None, flags | sc.MS_BIND | sc.MS_REMOUNT)

    def _make_parent_private(self) -> None:
        """pivot_root refuses a shared parent mount; find it in mountinfo and privatise it."""
        best = "/"
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            for line in f:
                mp = line.split(" ", 5)[4]
                if (self.root + "/").startswith(mp.rstrip("/") + "/") and len(mp) > len(best):
                    best = mp
        try:
            sc.mount(None, best, None, sc.MS_PRIVATE)
        except OSError as e:
            raise RuntimeFailure(f"make {best} private", e) from None

    def switch_root(self, no_pivot: bool) -> None:
        try:
            os.chdir(self.root)
            if no_pivot:
                sc.mount(self.root, "/", None, sc.MS_MOVE)
                os.chroot(".")
            else:
                sc.pivot_root(".", ".")
                # The old root now sits on top of the new one: detach it without
                # letting the unmount propagate anywhere.
                sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)
                sc.umount2(".", sc.MNT_DETACH)
            os.chdir("/")
        except OSError as e:
            raise RuntimeFailure("pivot_root" if not no_pivot else "move root", e) from None

    def finalize(self) -> None:
        """Steps that need the final root: sysctls, read-only and masked paths, ro root."""
        spec = self.spec
        for key, value in spec.sysctl.items():
            path = "/proc/sys/" + key.replace(".", "/")
            try:
                fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
                try:
                    os.write(fd, str(value).encode())
                finally:
                    os.close(fd)
            except OSError as e:
                raise RuntimeFailure(f"sysctl {key}", e) from None
        for path in spec.readonly_paths:
            try:
                sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC)
                sc.mount(path, path, None,
                         kept_flags(path) | sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY)
            except FileNotFoundError:
                continue
            except OSError as e:
                raise RuntimeFailure(f"readonly path {path}", e) from None
        for path in spec.masked_paths:
            try:
                sc.mount("/dev/null", path, None, sc.MS_BIND)
            except FileNotFoundError:
                continue
            except NotADirectoryError:
                try:
                    sc.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY)
                except OSError as e:
                    raise RuntimeFailure(f"mask path {path}", e) from None
            except OSError as e:
                raise RuntimeFailure(f"mask path {path}", e) from None
        for path, wanted in (("/dev", self.dev_ro), ("/", spec.root_readonly)):
            if wanted:
                try:
                    sc.mount(path, path, None,
                             kept_flags(path) | sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY)
                except OSError as e:
                    raise RuntimeFailure(f"remount {path} read-only", e) from None


def _is_bind(m: dict[str, Any]) -> bool:
    return m.get("type") == "bind" or any(o in ("bind", "rbind") for o in m.get("options") or [])
