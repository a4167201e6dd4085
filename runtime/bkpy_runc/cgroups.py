"""Cgroup placement and limits (v1 hierarchies or a pure v2 tree), best effort.

A hierarchy that is not writable (read-only cgroupfs, missing controller) is skipped
quietly, as the brief for this runtime asks; invalid limit values are reported.
"""

from __future__ import annotations

import os

from .errors import RuntimeFailure

CGROUP_ROOT = "/sys/fs/cgroup"
_SKIP_ERRNOS = (1, 13, 30, 2)  # EPERM, EACCES, EROFS, ENOENT: tree not ours to change

# Device rules runc appends to every spec, whatever its own rules say: creating any node
# (mknod) is allowed, using one only for the standard character devices.
_DEFAULT_DEVICE_RULES = (
    "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
    "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm",
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~15 ms of start-up; annotations are lazy
    from typing import Any


class Hierarchy:
    """One mounted hierarchy: its directory name under /sys/fs/cgroup and our cgroup in it."""

    __slots__ = ("controllers", "current", "name", "target")

    def __init__(self, name: str, controllers: list[str], current: str) -> None:
        self.name = name
        self.controllers = controllers
        self.current = current  # the runtime's own cgroup path in this hierarchy
        self.target = ""  # the container's cgroup dir (host path) once created

    def host_dir(self) -> str:
        base = os.path.join(CGROUP_ROOT, self.name) if self.name else CGROUP_ROOT
        return base + (self.target or self.current)


def is_unified() -> bool:
    return os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers"))


def hierarchies() -> list[Hierarchy]:
    """The hierarchies of the calling process as seen in /proc/self/cgroup."""
    unified = is_unified()
    out: list[Hierarchy] = []
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    # Ascending hierarchy ids: the order runc mounts them in the container.
    for line in sorted(lines, key=lambda ln: int(ln.split(":", 1)[0] or 0)):
        hid, ctrls, path = line.split(":", 2)
        if unified:
            if hid == "0":
                out.append(Hierarchy("", [], path))
            continue
        if hid == "0" or not ctrls:
            continue  # hybrid hosts: the empty v2 tree carries no controllers
        name = ctrls[5:] if ctrls.startswith("name=") else ctrls
        if os.path.isdir(os.path.join(CGROUP_ROOT, name)):
            out.append(Hierarchy(name, ctrls.split(","), path))
    return out


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def _mkdirs(h: Hierarchy, rel: str) -> None:
    """Create ``rel`` level by level; new cpuset levels inherit cpus/mems from the parent."""
    base = os.path.join(CGROUP_ROOT, h.name) if h.name else CGROUP_ROOT
    path = base
    for part in [p for p in rel.split("/") if p]:
        parent, path = path, os.path.join(path, part)
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            continue
        if "cpuset" in h.controllers:
            for knob in ("cpuset.cpus", "cpuset.mems"):
                if not _read(os.path.join(path, knob)):
                    _write(os.path.join(path, knob), _read(os.path.join(parent, knob)))


def _limits_v1(h: Hierarchy, res: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    mem, pids, cpu = res.get("memory") or {}, res.get("pids") or {}, res.get("cpu") or {}
    if "memory" in h.controllers:
        if mem.get("limit") is not None:
            out.append(("memory.limit_in_bytes", str(mem["limit"])))
        if mem.get("swap") is not None:
            out.append(("memory.memsw.limit_in_bytes", str(mem["swap"])))
        if mem.get("reservation") is not None:
            out.append(("memory.soft_limit_in_bytes", str(mem["reservation"])))
    if "pids" in h.controllers and pids.get("limit") is not None:
        out.append(("pids.max", "max" if pids["limit"] <= 0 else str(pids["limit"])))
    if "cpu" in h.controllers:
        if cpu.get("shares"):
            out.append(("cpu.shares", str(cpu["shares"])))
        if cpu.get("period"):
            out.append(("cpu.cfs_period_us", str(cpu["period"])))
        if cpu.get("quota"):
            out.append(("cpu.cfs_quota_us", str(cpu["quota"])))
    if "cpuset" in h.controllers:
        for key, knob in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
            if cpu.get(key):
                out.append((knob, str(cpu[key])))
    if "devices" in h.controllers and res.get("devices"):
        out.extend(_device_rules(res["devices"]))
    return out


def _device_rules(rules: list[dict[str, Any]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = [("devices.deny", "a")]
    for r in rules:
        kind, major, minor = r.get("type") or "a", r.get("major"), r.get("minor")
        access = r.get("access") or "rwm"
        if kind == "a":
            entry = "a"
        else:
            maj = "*" if major is None or major < 0 else str(major)
            mnr = "*" if minor is None or minor < 0 else str(minor)
            entry = f"{kind} {maj}:{mnr} {access}"
        if r.get("allow"):
            out.append(("devices.allow", entry))
        elif entry != "a":
            out.append(("devices.deny", entry))
    out.extend(("devices.allow", rule) for rule in _DEFAULT_DEVICE_RULES)
    return out


def _limits_v2(res: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    mem, pids, cpu = res.get("memory") or {}, res.get("pids") or {}, res.get("cpu") or {}
    limit = mem.get("limit")
    if limit is not None:
        out.append(("memory.max", "max" if limit < 0 else str(limit)))
        swap = mem.get("swap")
        if swap is not None:
            out.append(("memory.swap.max", "max" if swap < 0 else str(max(swap - limit, 0))))
    if mem.get("reservation") is not None:
        out.append(("memory.low", str(mem["reservation"])))
    if pids.get("limit") is not None:
        out.append(("pids.max", "max" if pids["limit"] <= 0 else str(pids["limit"])))
    if cpu.get("shares"):
        out.append(("cpu.weight", str(1 + (int(cpu["shares"]) - 2) * 9999 // 262142)))
    if cpu.get("quota") or cpu.get("period"):
        quota = cpu.get("quota")
        quota_s = "max" if not quota or quota < 0 else str(quota)
        out.append(("cpu.max", f"{quota_s} {cpu.get('period') or 100000}"))
    for key, knob in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        if cpu.get(key):
            out.append((knob, str(cpu[key])))
    return out


def setup(cgroups_path: str, cid: str, resources: dict[str, Any]) -> list[Hierarchy]:
    """Create the container's cgroups and write limits; returns every hierarchy found.

    Hierarchies where creation is refused keep ``target`` empty (the container stays in
    the runtime's cgroup there).
    """
    hs = hierarchies()
    for h in hs:
        rel = cgroups_path if cgroups_path.startswith("/") else (
            h.current.rstrip("/") + "/" + (cgroups_path or cid))
        try:
            _mkdirs(h, rel)
        except OSError as e:
            if e.errno in _SKIP_ERRNOS:
                continue
            raise RuntimeFailure(f"create cgroup {h.name or 'unified'}:{rel}", e) from None
        h.target = rel
        knobs = _limits_v2(resources) if not h.name else _limits_v1(h, resources)
        for knob, value in knobs:
            path = os.path.join(h.host_dir(), knob)
            try:
                _write(path, value)
            except OSError as e:
                if e.errno in _SKIP_ERRNOS:
                    continue
                raise RuntimeFailure(f"cgroup: write {value!r} to {knob}", e) from None
    return hs


def join_self(hs: list[Hierarchy]) -> None:
    """Move the calling (single-threaded) process into the container's cgroups.

    v1: writing "0" to ``tasks`` moves just the calling thread, which lets the kernel skip
    the global threadgroup lock whose RCU grace period costs 10-30 ms per container.
    """
    for h in hs:
        if not h.target:
            continue
        knob = "tasks" if h.name else "cgroup.procs"
        try:
            _write(os.path.join(h.host_dir(), knob), "0")
        except OSError as e:
            if e.errno not in _SKIP_ERRNOS:
                raise RuntimeFailure(f"join cgroup {h.host_dir()}", e) from None
            h.target = ""


def remove(dirs: list[str]) -> None:
    """Remove the container's leaf cgroups, retrying briefly while the kernel drains them."""
    import time

    for d in dirs:
        for _ in range(200):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno != 16:  # EBUSY: tasks still exiting
                    break
                time.sleep(0.005)
