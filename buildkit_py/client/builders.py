"""Builders as buildx knows them: named, with a driver and ordered nodes, kept in the
client config directory (``$BKPY_CONFIG``, interface.md "Locations").

Layout::

    <config>/builders/<name>.json   one record per builder
    <config>/current                the selected builder (absent: "default")
    <config>/daemons/<builder>-<node>/   pid and log of a daemon-driver bkpyd

Drivers: ``embedded`` (the builder core in the bkpy process; "default" is one),
``daemon`` (a local bkpyd started on demand, state under the builder's own root),
``remote`` (an existing bkpyd at ``unix://`` or ``tcp://``, TLS via driver options).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buildkit_py.config import client_config_dir, default_state_root, load_config
from buildkit_py.errors import UsageError

if TYPE_CHECKING:
    from buildkit_py.api.tls import TLSFiles
    from buildkit_py.client.base import BuilderClient
    from buildkit_py.client.remote import RemoteClient

DEFAULT_BUILDER = "default"
DRIVERS = ("embedded", "daemon", "remote")
TLS_OPTS = ("cacert", "cert", "key", "servername")
DRIVER_OPTS = {"embedded": ("root", "config"), "daemon": ("root", "config"),
               "remote": TLS_OPTS}
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


@dataclass
class Node:
    name: str
    endpoint: str = ""
    platforms: list[str] = field(default_factory=list)
    driver_opts: dict[str, str] = field(default_factory=dict)


@dataclass
class BuilderRecord:
    name: str
    driver: str
    nodes: list[Node] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BuilderRecord:
        return cls(data["name"], data["driver"],
                   [Node(n["name"], n.get("endpoint", ""), list(n.get("platforms", [])),
                         dict(n.get("driver_opts", {}))) for n in data.get("nodes", [])])


def check_name(name: str, what: str = "builder") -> str:
    if not _NAME.match(name):
        raise UsageError(f"invalid {what} name {name!r}",
                         hint="use letters, digits, '.', '_' and '-' (at most 63)")
    return name


def default_record() -> BuilderRecord:
    return BuilderRecord(DEFAULT_BUILDER, "embedded", [Node(f"{DEFAULT_BUILDER}0")])


class BuilderStore:
    def __init__(self, config_dir: Path | None = None) -> None:
        self.dir = config_dir or client_config_dir()

    @property
    def _builders(self) -> Path:
        return self.dir / "builders"

    def _path(self, name: str) -> Path:
        return self._builders / f"{check_name(name)}.json"

    def list(self) -> list[BuilderRecord]:
        out = [default_record()]
        if self._builders.is_dir():
            for p in sorted(self._builders.glob("*.json")):
                with contextlib.suppress(ValueError, KeyError, OSError):
                    out.append(BuilderRecord.from_json(json.loads(p.read_text())))
        return out

    def exists(self, name: str) -> bool:
        return name == DEFAULT_BUILDER or self._path(name).is_file()

    def get(self, name: str) -> BuilderRecord:
        if name == DEFAULT_BUILDER:
            return default_record()
        path = self._path(name)
        try:
            return BuilderRecord.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise UsageError(f"no builder {name!r} found",
                             hint="see `bkpy builder ls`, or create it with "
                                  "`bkpy builder create --name NAME`") from None
        except (ValueError, KeyError) as err:
            raise UsageError(f"builder record {path} is damaged: {err}",
                             hint=f"remove it with `bkpy builder rm {name}`") from None

    def save(self, rec: BuilderRecord) -> None:
        if rec.name == DEFAULT_BUILDER:
            raise UsageError("the default builder cannot be changed")
        self._builders.mkdir(parents=True, exist_ok=True)
        path = self._path(rec.name)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec.to_json(), indent=2) + "\n")
        os.replace(tmp, path)

    def remove(self, name: str) -> None:
        if name == DEFAULT_BUILDER:
            raise UsageError("the default builder cannot be removed")
        self._path(name).unlink(missing_ok=True)
        if self.current() == name:
            (self.dir / "current").unlink(missing_ok=True)

    def current(self) -> str:
        try:
            name = (self.dir / "current").read_text().strip()
        except OSError:
            return DEFAULT_BUILDER
        return name if name and self.exists(name) else DEFAULT_BUILDER

    def use(self, name: str) -> None:
        self.get(name)  # must exist
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "current").write_text(name + "\n")

    def selected(self, name: str | None) -> BuilderRecord:
        """``--builder``/``BKPY_BUILDER`` if given, else buildx's ``BUILDX_BUILDER``, else
        the current builder (as in buildx, the flag wins over the environment)."""
        return self.get(name or os.environ.get("BUILDX_BUILDER") or self.current())

    # ---------------------------------------------------------------- daemon driver

    def daemon_dir(self, rec: BuilderRecord, node: Node) -> Path:
        return self.dir / "daemons" / f"{rec.name}-{node.name}"

    def daemon_socket(self, rec: BuilderRecord, node: Node) -> Path:
        path = self.daemon_dir(rec, node) / "bkpyd.sock"
        if len(str(path)) > 100:  # sun_path holds 108 bytes
            digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
            path = Path(tempfile.gettempdir()) / f"bkpy-{os.geteuid()}" / f"{digest}.sock"
        return path


def default_daemon_root(builder: str, node: str) -> Path:
    base = default_state_root()
    return base.with_name(base.name + "-builders") / f"{builder}-{node}"


def node_endpoint(store: BuilderStore, rec: BuilderRecord, node: Node) -> str:
    if rec.driver == "daemon":
        return f"unix://{store.daemon_socket(rec, node)}"
    return node.endpoint


def node_tls(node: Node) -> TLSFiles | None:
    opts = node.driver_opts
    if not any(k in opts for k in TLS_OPTS):
        return None
    # reason: TLS settings are for remote builders only, not every embedded build
    from buildkit_py.api.tls import TLSFiles

    return TLSFiles(cacert=opts.get("cacert"), cert=opts.get("cert"), key=opts.get("key"),
                    servername=opts.get("servername"))


def remote_client(store: BuilderStore, rec: BuilderRecord, node: Node) -> RemoteClient:
    from buildkit_py.client.remote import RemoteClient  # reason: grpc, only for remote builders

    return RemoteClient(node_endpoint(store, rec, node), node_tls(node))


def _pid(store: BuilderStore, rec: BuilderRecord, node: Node) -> int | None:
    try:
        pid = int((store.daemon_dir(rec, node) / "bkpyd.pid").read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return pid


def start_daemon(store: BuilderStore, rec: BuilderRecord, node: Node) -> None:
    """Start the node's bkpyd unless it already answers; wait until it does."""
    client = remote_client(store, rec, node)
    try:
        if client.ping():
            return
        ddir = store.daemon_dir(rec, node)
        ddir.mkdir(parents=True, exist_ok=True)
        sock = store.daemon_socket(rec, node)
        sock.parent.mkdir(parents=True, exist_ok=True)
        root = node.driver_opts.get("root") or str(default_daemon_root(rec.name, node.name))
        cmd = [sys.executable, "-m", "buildkit_py.control.daemon", "--root", root,
               "--addr", f"unix://{sock}"]
        if node.driver_opts.get("config"):
            cmd += ["--config", node.driver_opts["config"]]
        log = ddir / "bkpyd.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    start_new_session=True)
        (ddir / "bkpyd.pid").write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if client.ping(timeout=0.5):
                return
            if proc.poll() is not None:
                tail = log.read_text(errors="replace").strip().splitlines()[-5:]
                raise UsageError(f"builder {rec.name!r}: bkpyd exited with status "
                                 f"{proc.returncode}:\n" + "\n".join(tail),
                                 hint=f"see {log}")
            time.sleep(0.1)
        raise UsageError(f"builder {rec.name!r}: bkpyd did not answer within "
                         f"{START_TIMEOUT:.0f}s", hint=f"see {log}")
    finally:
        client.close()


def stop_daemon(store: BuilderStore, rec: BuilderRecord, node: Node) -> bool:
    """SIGTERM the node's bkpyd and wait for it; False if it was not running."""
    pid = _pid(store, rec, node)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                break
        time.sleep(0.1)
    (store.daemon_dir(rec, node) / "bkpyd.pid").unlink(missing_ok=True)
    return True


def node_status(store: BuilderStore, rec: BuilderRecord, node: Node) -> str:
    if rec.driver == "embedded":
        return "running"
    client = remote_client(store, rec, node)
    try:
        if client.ping(timeout=1.0):
            return "running"
    except UsageError:
        return "error"
    finally:
        client.close()
    return "inactive" if rec.driver == "daemon" else "unreachable"


def embedded_config(node: Node) -> Any:
    cfg_path = node.driver_opts.get("config")
    config = load_config(Path(cfg_path) if cfg_path else None)
    if node.driver_opts.get("root"):
        config.root = Path(node.driver_opts["root"])
    return config


def open_client(rec: BuilderRecord, store: BuilderStore | None = None) -> BuilderClient:
    """A client for the builder; daemon-driver nodes are started when needed."""
    store = store or BuilderStore()
    if rec.driver == "embedded":
        # reason: the embedded client (~7 ms) stays off --help and builder ls, which load this
        from buildkit_py.client.embedded import EmbeddedClient

        return EmbeddedClient(embedded_config(rec.nodes[0]))
    if rec.driver == "daemon":
        for node in rec.nodes:
            start_daemon(store, rec, node)
    if len(rec.nodes) == 1:
        return remote_client(store, rec, rec.nodes[0])
    # reason: the multi-node client (~20 ms, imagetools) is only for multi-node builders
    from buildkit_py.client.multinode import MultiNodeClient, NodeTarget

    return MultiNodeClient([NodeTarget(n.name, remote_client(store, rec, n), list(n.platforms))
                            for n in rec.nodes])
