"""Container state on disk (``<root>/<id>/state.json``) and live status detection."""

from __future__ import annotations

import os
import time

from . import OCI_VERSION, jsonio
from .errors import RuntimeFailure

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~15 ms of start-up; annotations are lazy
    from typing import Any

DEFAULT_ROOT = "/run/bkpy-runc"
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def check_id(cid: str) -> None:
    if not cid or cid in (".", "..") or not set(cid) <= _ID_CHARS:
        raise RuntimeFailure(f"invalid container id {cid!r}")


def proc_start_time(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of ``pid`` from /proc, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return fields[0], int(fields[19])


def timestamp() -> str:
    ns = time.time_ns()
    t = time.gmtime(ns // 10**9)  # not strftime: that loads the timezone database
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
            f"{t.tm_sec:02d}.{ns % 10**9:09d}Z")


class State:
    """What ``create`` records so later commands (start/state/kill/delete) can act."""

    def __init__(self, root: str, cid: str) -> None:
        self.root = root
        self.id = cid
        self.dir = os.path.join(root, cid)
        self.oci_version = OCI_VERSION
        self.bundle = ""
        self.rootfs = ""
        self.pid = 0
        self.start_time = 0
        self.created = ""
        self.started = False
        self.annotations: dict[str, str] = {}
        self.cgroup_dirs: list[str] = []
        self.hooks: dict[str, Any] = {}

    @property
    def state_file(self) -> str:
        return os.path.join(self.dir, "state.json")

    @property
    def fifo(self) -> str:
        return os.path.join(self.dir, "exec.fifo")

    def create_dir(self) -> None:
        try:
            # realpath: a root that is a link to a removed directory (on tmpfs) is recreated
            # (twice: an idle, empty one may be pruned just as it comes back into use).
            for attempt in (1, 2):
                os.makedirs(os.path.realpath(self.root), mode=0o711, exist_ok=True)
                try:
                    os.mkdir(self.dir, 0o711)
                    break
                except FileNotFoundError:
                    if attempt == 2:
                        raise
        except FileExistsError:
            raise RuntimeFailure(f"container with id {self.id} already exists") from None
        except OSError as e:
            raise RuntimeFailure(f"create state directory {self.dir}", e) from None

    def save(self) -> None:
        doc = {
            "id": self.id, "ociVersion": self.oci_version, "bundle": self.bundle,
            "rootfs": self.rootfs, "pid": self.pid, "startTime": self.start_time,
            "created": self.created, "started": self.started, "annotations": self.annotations,
            "cgroupDirs": self.cgroup_dirs, "hooks": self.hooks,
        }
        tmp = self.state_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(jsonio.dumps(doc))
        os.replace(tmp, self.state_file)

    def status(self) -> str:
        if not self.pid:
            return "creating"
        info = proc_start_time(self.pid)
        if info is None or info[0] in "ZX" or info[1] != self.start_time:
            return "stopped"
        return "running" if self.started else "created"

    def public(self) -> dict[str, Any]:
        """The runtime-spec state object (plus runc's rootfs/created/owner fields)."""
        status = self.status()
        return {
            "ociVersion": self.oci_version, "id": self.id,
            "pid": self.pid if status in ("created", "running") else 0, "status": status,
            "bundle": self.bundle, "rootfs": self.rootfs, "created": self.created, "owner": "",
            "annotations": self.annotations,
        }

    def hook_state(self, status: str) -> str:
        return jsonio.dumps({"ociVersion": self.oci_version, "id": self.id, "status": status,
                             "pid": self.pid, "bundle": self.bundle,
                             "annotations": self.annotations})


def load(root: str, cid: str) -> State:
    check_id(cid)
    st = State(root, cid)
    try:
        with open(st.state_file, encoding="utf-8") as f:
            doc = jsonio.loads(f.read())
    except FileNotFoundError:
        raise RuntimeFailure(f"container {cid} does not exist") from None
    except (OSError, ValueError) as e:
        raise RuntimeFailure(f"read state of container {cid}", e) from None
    st.oci_version = doc.get("ociVersion", OCI_VERSION)
    st.bundle = doc.get("bundle", "")
    st.rootfs = doc.get("rootfs", "")
    st.pid = int(doc.get("pid", 0))
    st.start_time = int(doc.get("startTime", 0))
    st.created = doc.get("created", "")
    st.started = bool(doc.get("started", False))
    st.annotations = doc.get("annotations") or {}
    st.cgroup_dirs = list(doc.get("cgroupDirs") or [])
    st.hooks = doc.get("hooks") or {}
    return st


def list_ids(root: str) -> list[str]:
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    return [n for n in names if os.path.isfile(os.path.join(root, n, "state.json"))]


def remove_dir(st: State) -> None:
    try:
        for name in os.listdir(st.dir):
            os.unlink(os.path.join(st.dir, name))
        os.rmdir(st.dir)
    except FileNotFoundError:
        pass
