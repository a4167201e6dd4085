"""CDI (Container Device Interface) devices for ``RUN --device``: the registry and the edits.

The builder's host describes its devices in CDI spec files (YAML or JSON, in the spec
directories; later directories win). Each spec has a ``kind`` (``vendor.com/class``),
devices by name, and "container edits" (environment, device nodes, mounts) that giving a
container the device means. A build names a device as BuildKit resolves it: the qualified
name ``vendor.com/class=name``, a bare kind for the kind's first device, ``kind=*`` for all
of them, or a value of the ``org.mobyproject.buildkit.device.class`` annotation.

Whether a build may use a device is decided by the builder (see ``devices_allowed`` in the
builder core): the ``device`` entitlement, or a device marked auto-allowed (the
``org.mobyproject.buildkit.device.autoallow`` annotation or the config's list).
Hooks and network devices are refused: bkpy's runtime runs no hooks, and silently leaving
out part of a device would give a step that fails in confusing ways.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildkit_py.errors import BuildError
from buildkit_py.gostrings import go_quote

DEFAULT_SPEC_DIRS = (Path("/etc/cdi"), Path("/var/run/cdi"), Path("/etc/buildkit/cdi"))
CLASS_ANNOTATION = "org.mobyproject.buildkit.device.class"
AUTOALLOW_ANNOTATION = "org.mobyproject.buildkit.device.autoallow"

_KIND = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(?:\.[A-Za-z0-9_.-]+)+/[A-Za-z0-9][A-Za-z0-9_.-]*")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
_SUPPORTED_EDITS = {"env", "deviceNodes", "mounts", "additionalGids"}


class CDIError(BuildError):
    pass


@dataclass
class ContainerEdits:
    """What giving a container some devices changes in its OCI spec."""

    env: list[str] = field(default_factory=list)
    device_nodes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    additional_gids: list[int] = field(default_factory=list)

    def extend(self, raw: dict[str, Any], where: str) -> None:
        unsupported = sorted(k for k, v in raw.items() if v and k not in _SUPPORTED_EDITS)
        if unsupported:
            raise CDIError(f"{where}: container edits {', '.join(unsupported)} are not "
                           "supported by this builder",
                           hint="bkpy's runtime applies env, deviceNodes, mounts and "
                                "additionalGids only")
        self.env += [str(e) for e in raw.get("env") or []]
        self.device_nodes += [dict(d) for d in raw.get("deviceNodes") or []]
        self.mounts += [dict(m) for m in raw.get("mounts") or []]
        self.additional_gids += [int(g) for g in raw.get("additionalGids") or []]

    def apply(self, spec: dict[str, Any]) -> None:
        """Edit a runtime spec in place, as the CDI library does."""
        process = spec["process"]
        for entry in self.env:
            key = entry.partition("=")[0]
            process["env"] = [e for e in process["env"] if e.partition("=")[0] != key]
            process["env"].append(entry)
        user = process["user"]
        user["additionalGids"] = list(dict.fromkeys(
            [*user.get("additionalGids", []), *self.additional_gids]))
        linux = spec.setdefault("linux", {})
        for node in self.device_nodes:
            dev = _device(node, user)
            linux["devices"] = [d for d in linux.get("devices", []) if d["path"] != dev["path"]]
            linux["devices"].append(dev)
            if dev["type"] in ("b", "c"):
                rules = linux.setdefault("resources", {}).setdefault("devices", [])
                rules.append({"allow": True, "type": dev["type"], "major": dev["major"],
                              "minor": dev["minor"], "access": node.get("permissions") or "rwm"})
        for m in self.mounts:
            dest = str(m["containerPath"])
            spec["mounts"] = [x for x in spec["mounts"] if x["destination"] != dest]
            spec["mounts"].append({"destination": dest, "type": m.get("type") or "bind",
                                   "source": str(m["hostPath"]),
                                   "options": list(m.get("options") or [])})
        # parents before children, as the CDI library sorts them
        spec["mounts"].sort(key=lambda x: len(Path(x["destination"]).parts))


def _device(node: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    """An OCI ``linux.devices`` entry; what the spec leaves out comes from the host node."""
    path = str(node.get("path") or "")
    if not path:
        raise CDIError("CDI device node without a path")
    dev: dict[str, Any] = {"path": path}
    kind, major, minor = node.get("type"), node.get("major"), node.get("minor")
    if not kind or major is None:
        host = str(node.get("hostPath") or path)
        try:
            st = os.stat(host)
        except OSError as err:
            raise CDIError(f"CDI device node {path}: cannot stat {host}: {err.strerror}") \
                from None
        if stat.S_ISBLK(st.st_mode):
            found = "b"
        elif stat.S_ISCHR(st.st_mode):
            found = "c"
        elif stat.S_ISFIFO(st.st_mode):
            found = "p"
        else:
            raise CDIError(f"CDI device node {path}: {host} is not a device")
        kind = kind or found
        if major is None:
            major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    dev.update(type=kind, major=int(major), minor=int(minor or 0))
    if node.get("fileMode") is not None:
        dev["fileMode"] = int(node["fileMode"])
    for key, fallback in (("uid", user.get("uid", 0)), ("gid", user.get("gid", 0))):
        if node.get(key) is not None:
            dev[key] = int(node[key])
        elif fallback:
            dev[key] = int(fallback)
    return dev


@dataclass
class _Device:
    qualified: str
    kind: str
    annotations: dict[str, str]
    edits: dict[str, Any]
    spec_edits: dict[str, Any]
    spec_file: str


class CDIRegistry:
    """The CDI devices the spec directories describe, re-read on every build."""

    def __init__(self, spec_dirs: list[Path] | tuple[Path, ...] = DEFAULT_SPEC_DIRS,
                 auto_allowed: list[str] | tuple[str, ...] = ()) -> None:
        self.spec_dirs = [Path(d) for d in spec_dirs]
        self.auto_allowed = set(auto_allowed)
        self._devices: dict[str, _Device] = {}

    def refresh(self) -> None:
        found: dict[str, _Device] = {}
        for d in self.spec_dirs:  # increasing priority
            try:
                names = sorted(os.listdir(d))
            except OSError:
                continue
            for name in names:
                if name.endswith((".yaml", ".yml", ".json")):
                    for dev in _load_spec(d / name):
                        found[dev.qualified] = dev
        self._devices = found

    def names(self) -> list[str]:
        return sorted(self._devices)

    def find(self, name: str, *, optional: bool) -> list[str]:
        """Qualified names ``name`` stands for; a required one that matches nothing fails."""
        kind, sep, dev = name.partition("=")
        out: list[str] = []
        if _KIND.fullmatch(kind):
            same_kind = [q for q in sorted(self._devices) if q.startswith(kind + "=")]
            if not sep or not dev:
                out = same_kind[:1]
            elif dev == "*":
                out = same_kind
            elif name in self._devices:
                out = [name]
        if not out:
            out = [q for q in sorted(self._devices)
                   if self._devices[q].annotations.get(CLASS_ANNOTATION) == name]
        if not out and not optional:
            raise CDIError(f"required device {go_quote(name)} is not registered",
                           hint=f"the builder's CDI spec directories "
                                f"({', '.join(map(str, self.spec_dirs))}) describe no such "
                                "device")
        return out

    def auto_allow(self, qualified: str) -> bool:
        dev = self._devices.get(qualified)
        if dev is None:
            return False
        if qualified in self.auto_allowed or dev.kind in self.auto_allowed:
            return True
        return dev.annotations.get(AUTOALLOW_ANNOTATION, "").lower() in ("1", "t", "true")

    def edits(self, qualified: list[str]) -> ContainerEdits:
        """The container edits for these devices: each spec's own edits once, then each
        device's."""
        out = ContainerEdits()
        seen_specs: set[str] = set()
        for q in qualified:
            dev = self._devices[q]
            if dev.spec_file not in seen_specs:
                seen_specs.add(dev.spec_file)
                out.extend(dev.spec_edits, dev.spec_file)
            out.extend(dev.edits, f"{dev.spec_file}: device {q}")
        return out


def _load_spec(path: Path) -> list[_Device]:
    try:
        text = path.read_text()
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml  # reason: PyYAML (~10 ms) only when a YAML spec exists

            data = yaml.safe_load(text)
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise CDIError(f"CDI spec {path}: cannot read it: {err}") from None
    except Exception as err:  # yaml.YAMLError
        raise CDIError(f"CDI spec {path}: invalid YAML: {err}") from None
    if not isinstance(data, dict):
        raise CDIError(f"CDI spec {path}: not a CDI spec (want a mapping)")
    kind = str(data.get("kind") or "")
    if not _KIND.fullmatch(kind):
        raise CDIError(f"CDI spec {path}: invalid kind {kind!r} (want vendor.com/class)")
    spec_annotations = {str(k): str(v).lower() if isinstance(v, bool) else str(v)
                        for k, v in (data.get("annotations") or {}).items()}
    out = []
    for raw in data.get("devices") or []:
        name = str(raw.get("name") or "")
        if not _NAME.fullmatch(name):
            raise CDIError(f"CDI spec {path}: invalid device name {name!r}")
        annotations = dict(spec_annotations)
        annotations.update({str(k): str(v).lower() if isinstance(v, bool) else str(v)
                            for k, v in (raw.get("annotations") or {}).items()})
        out.append(_Device(f"{kind}={name}", kind, annotations,
                           dict(raw.get("containerEdits") or {}),
                           dict(data.get("containerEdits") or {}), str(path)))
    return out
