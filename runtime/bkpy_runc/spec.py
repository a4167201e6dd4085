"""Reading and checking an OCI bundle's ``config.json`` (runtime-spec config.md)."""

from __future__ import annotations

import os

from . import jsonio
from .errors import RuntimeFailure

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~15 ms of start-up; annotations are lazy
    from typing import Any

    from .seccomp import Filter, Profile

    Json = dict[str, Any]

NAMESPACE_FLAGS = {
    "pid": 0x20000000,
    "network": 0x40000000,
    "mount": 0x00020000,
    "ipc": 0x08000000,
    "uts": 0x04000000,
    "user": 0x10000000,
    "cgroup": 0x02000000,
}



class Namespace:
    __slots__ = ("flag", "kind", "path")

    def __init__(self, kind: str, path: str) -> None:
        self.kind = kind
        self.flag = NAMESPACE_FLAGS[kind]
        self.path = path


class Spec:
    """The parts of config.json the runtime acts on, validated up front."""

    def __init__(self, bundle: str, raw: Json) -> None:
        self.bundle = bundle
        self.raw = raw
        self.oci_version: str = _str(raw.get("ociVersion", ""), "ociVersion")
        root = _obj(raw.get("root"), "root")
        path = _str(root.get("path", ""), "root.path")
        if not path:
            raise RuntimeFailure("config.json", "root.path is empty")
        self.rootfs = os.path.realpath(os.path.join(bundle, path))
        self.root_readonly = bool(root.get("readonly", False))
        proc = _obj(raw.get("process"), "process")
        self.terminal = bool(proc.get("terminal", False))
        size = proc.get("consoleSize") or {}
        self.console_size = ((int(size.get("height", 0)), int(size.get("width", 0)))
                             if isinstance(size, dict) else (0, 0))
        self.process = proc
        args = proc.get("args")
        if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
            raise RuntimeFailure("config.json", "process.args must be a non-empty list of strings")
        self.args: list[str] = args
        self.env: list[str] = [e for e in proc.get("env") or [] if isinstance(e, str)]
        self.cwd = _str(proc.get("cwd", "/"), "process.cwd") or "/"
        if not self.cwd.startswith("/"):
            raise RuntimeFailure("config.json", f"process.cwd {self.cwd!r} is not absolute")
        user = _obj(proc.get("user", {}), "process.user")
        self.uid = _int(user.get("uid", 0), "process.user.uid")
        self.gid = _int(user.get("gid", 0), "process.user.gid")
        self.additional_gids = [_int(g, "process.user.additionalGids")
                                for g in user.get("additionalGids") or []]
        umask = user.get("umask")
        self.umask = 0o022 if umask is None else _int(umask, "process.user.umask")
        self.capabilities: Json = _obj(proc.get("capabilities", {}), "process.capabilities")
        self.rlimits: list[Json] = list(proc.get("rlimits") or [])
        self.no_new_privileges = bool(proc.get("noNewPrivileges", False))
        oom = proc.get("oomScoreAdj")
        self.oom_score_adj = None if oom is None else _int(oom, "process.oomScoreAdj")
        self.hostname: str | None = raw.get("hostname")
        self.domainname: str | None = raw.get("domainname")
        self.mounts: list[Json] = list(raw.get("mounts") or [])
        for m in self.mounts:
            dest = m.get("destination") if isinstance(m, dict) else None
            if not isinstance(dest, str) or not dest.startswith("/"):
                raise RuntimeFailure("config.json", f"mount destination {dest!r} is not absolute")
        self.hooks: Json = _obj(raw.get("hooks", {}), "hooks")
        self.annotations: dict[str, str] = raw.get("annotations") or {}
        linux = _obj(raw.get("linux", {}), "linux")
        self.namespaces: list[Namespace] = []
        for ns in linux.get("namespaces") or []:
            kind = ns.get("type") if isinstance(ns, dict) else None
            if kind not in NAMESPACE_FLAGS:
                raise RuntimeFailure("config.json", f"unknown namespace type {kind!r}")
            if kind == "user":
                raise RuntimeFailure("config.json", "user namespaces are not supported")
            self.namespaces.append(Namespace(kind, ns.get("path") or ""))
        self.ns_kinds = {ns.kind for ns in self.namespaces}
        if self.hostname and "uts" not in self.ns_kinds:
            raise RuntimeFailure("config.json", "hostname requires a new uts namespace")
        self.masked_paths: list[str] = list(linux.get("maskedPaths") or [])
        self.readonly_paths: list[str] = list(linux.get("readonlyPaths") or [])
        self.sysctl: dict[str, str] = linux.get("sysctl") or {}
        self.resources: Json = linux.get("resources") or {}
        self.cgroups_path: str = linux.get("cgroupsPath") or ""
        self.devices: list[Json] = list(linux.get("devices") or [])
        self.propagation: str = linux.get("rootfsPropagation") or ""
        self.seccomp: Any = linux.get("seccomp")  # validated by seccomp.Profile
        self.seccomp_profile: Profile | None = None
        self.seccomp_filter: Filter | None = None  # what the init loads before exec


def load(bundle: str) -> Spec:
    bundle = os.path.abspath(bundle)
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise RuntimeFailure(f"read {path}", e) from None
    try:
        raw = jsonio.loads(text)
    except ValueError as e:
        raise RuntimeFailure(f"parse {path}", e) from None
    if not isinstance(raw, dict):
        raise RuntimeFailure(f"parse {path}", "not a JSON object")
    return Spec(bundle, raw)


def _obj(value: Any, name: str) -> Json:
    if not isinstance(value, dict):
        raise RuntimeFailure("config.json", f"{name} must be an object")
    return value


def _str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise RuntimeFailure("config.json", f"{name} must be a string")
    return value


def _int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise RuntimeFailure("config.json", f"{name} must be an integer")
    return value
