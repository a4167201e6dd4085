"""The remote client: builds on a ``bkpyd`` over gRPC, serving its session locally.

For one build the client opens three calls on one channel: ``Session`` (the daemon
asks it for context files, secrets, ssh agent connections, and hands it exporter
output), ``Status`` (progress events, fed to the same display as an embedded build)
and ``Solve``. Ignore rules are applied here, so ignored files never leave the client.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import queue
import socket
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import grpc

from buildkit_py.builder.core import BuildOutcome
from buildkit_py.client.base import PruneOptions, UsageItem, WorkerInfo
from buildkit_py.client.request import BuildRequest, OutputSpec
from buildkit_py.control import control_pb2 as pb
from buildkit_py.control import control_pb2_grpc as pb_grpc
from buildkit_py.control.filesync import ContextSender
from buildkit_py.control.tls import TLSFiles
from buildkit_py.control.wire import (
    ERROR_TEXT_KEY,
    EXIT_CODE_KEY,
    SESSION_ID_KEY,
    event_from_pb,
)
from buildkit_py.errors import BuildError, UsageError, UserError
from buildkit_py.solver.progress import ProgressEvent

ProgressSink = Callable[[ProgressEvent], None]
_CLOSE = object()


class RemoteBuildError(UserError):
    """A failure the daemon already rendered (Dockerfile snippet, log tail, hint)."""

    def __init__(self, text: str, exit_code: int) -> None:
        super().__init__(text.removeprefix("ERROR: "))
        self.rendered = text
        self.exit_code = exit_code

    def render(self) -> str:
        return self.rendered


class DaemonUnavailableError(UserError):
    pass


def grpc_target(endpoint: str) -> str:
    """``unix:///path`` or ``tcp://host:port`` -> a grpc channel target."""
    if endpoint.startswith("unix://"):
        return "unix:" + endpoint.removeprefix("unix://")
    if endpoint.startswith("tcp://"):
        return endpoint.removeprefix("tcp://")
    raise UsageError(f"unknown builder endpoint {endpoint!r}",
                     hint="use unix:///PATH or tcp://HOST:PORT")


def node_id() -> str:
    """A stable id of this client machine (for the daemon's per-context copies)."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            return Path(path).read_text().strip() + "@" + socket.gethostname()
        except OSError:
            continue
    return socket.gethostname()


def context_id(name: str, path: Path) -> str:
    raw = f"{node_id()}:{name}:{path.absolute()}"
    return hashlib.sha256(raw.encode()).hexdigest()


def _rpc_error(err: grpc.RpcError, endpoint: str) -> UserError:
    text, code = "", 1
    trailing = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == ERROR_TEXT_KEY + "-bin":
            text = bytes(value).decode("utf-8", "replace")
        elif key == EXIT_CODE_KEY:
            code = int(value)
    if text:
        return RemoteBuildError(text, code)
    status = err.code() if hasattr(err, "code") else None
    details = err.details() if hasattr(err, "details") else str(err)
    if status == grpc.StatusCode.UNAVAILABLE:
        return DaemonUnavailableError(
            f"cannot reach the builder daemon at {endpoint}: {details}",
            hint="start it (bkpy builder inspect --bootstrap) or check the address and "
                 "TLS settings")
    return BuildError(f"builder daemon at {endpoint}: {details}")


# ---------------------------------------------------------------- the session


class _OutputWriter:
    """Writes one exporter output arriving in zstd frames to its client-side dest."""

    def __init__(self, spec: OutputSpec, kind: str) -> None:
        import zstandard

        self._decomp = zstandard.ZstdDecompressor()
        self.error = ""
        dest = spec.dest
        self._file: IO[bytes] | None = None
        self._pipe: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        if kind == "file":
            if dest in (None, "-"):
                self._file, self._close = sys.stdout.buffer, False
            else:
                path = Path(dest)
                path.parent.mkdir(parents=True, exist_ok=True)
                self._file, self._close = open(path, "wb"), True
        else:
            target = Path(dest or ".")
            target.mkdir(parents=True, exist_ok=True)
            self._pipe = queue.Queue(maxsize=8)
            self._thread = threading.Thread(target=self._extract, args=(target,), daemon=True)
            self._thread.start()

    def _extract(self, target: Path) -> None:
        assert self._pipe is not None
        reader = _QueueReader(self._pipe)
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tf:  # type: ignore[call-overload]
                tf.extractall(target, numeric_owner=True, filter=_inside(target))
        except Exception as err:
            self.error = f"{type(err).__name__}: {err}"
            reader.drain()

    def write(self, frame: bytes) -> None:
        data = self._decomp.decompress(frame)
        if self._file is not None:
            try:
                self._file.write(data)
            except OSError as err:
                self.error = self.error or str(err)
        elif self._pipe is not None:
            self._pipe.put(data)

    def finish(self) -> str:
        if self._file is not None:
            try:
                self._file.flush()
                if self._close:
                    self._file.close()
            except OSError as err:
                self.error = self.error or str(err)
        if self._pipe is not None and self._thread is not None:
            self._pipe.put(None)
            self._thread.join()
        return self.error


def _inside(target: Path) -> Callable[[tarfile.TarInfo, str], tarfile.TarInfo]:
    """Keep members (modes and owners as built) but never write outside ``target``."""
    base = os.path.realpath(target)

    def check(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
        name = os.path.normpath(member.name)
        path = os.path.realpath(os.path.join(base, name))
        if name.startswith(("/", "..")) or not (path == base or path.startswith(base + "/")):
            raise tarfile.OutsideDestinationError(member, path)
        return member

    return check


class _QueueReader:
    """A read-only file over a queue of byte chunks (None = end)."""

    def __init__(self, q: queue.Queue[bytes | None]) -> None:
        self._q = q
        self._buf = b""
        self._eof = False

    def read(self, n: int = -1) -> bytes:
        while not self._eof and (n < 0 or len(self._buf) < n):
            item = self._q.get()
            if item is None:
                self._eof = True
            else:
                self._buf += item
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def drain(self) -> None:
        while not self._eof:
            if self._q.get() is None:
                self._eof = True


class ClientSession:
    """Answers the daemon's requests for one build."""

    def __init__(self, req: BuildRequest, senders: dict[str, ContextSender]) -> None:
        self.req = req
        self.senders = senders
        self._out: queue.Queue[object] = queue.Queue(maxsize=64)
        self._secrets = {s.id: s for s in req.secrets}
        self._ssh_specs = {s.id: s for s in req.ssh}
        self._ssh: dict[int, socket.socket] = {}
        self._outputs: dict[int, _OutputWriter] = {}
        self._lock = threading.Lock()
        self.closed = threading.Event()
        self.error: str | None = None

    def requests(self) -> Iterator[pb.SessionMessage]:
        while True:
            item = self._out.get()
            if item is _CLOSE:
                return
            assert isinstance(item, pb.SessionMessage)
            yield item

    def send(self, msg: pb.SessionMessage) -> None:
        if not self.closed.is_set():
            self._out.put(msg)

    def close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            self._out.put(_CLOSE)
        with self._lock:
            conns, self._ssh = list(self._ssh.values()), {}
        for c in conns:
            c.close()

    def serve(self, responses: Iterator[pb.SessionMessage]) -> None:
        """Handle the daemon's messages (on a reader thread) until the stream ends."""
        try:
            for msg in responses:
                self._handle(msg)
        except grpc.RpcError:
            pass  # the build's own call reports what went wrong
        finally:
            for w in list(self._outputs.values()):
                w.finish()

    def _spawn(self, fn: Callable[..., None], *args: Any) -> None:
        threading.Thread(target=fn, args=args, daemon=True).start()

    def _handle(self, msg: pb.SessionMessage) -> None:
        kind = msg.WhichOneof("msg")
        if kind == "sync_start":
            self._spawn(self._send_listing, msg.sync_start.name)
        elif kind == "file_request":
            self._spawn(self._send_files, msg.file_request)
        elif kind == "secret_request":
            self._spawn(self._send_secret, msg.secret_request)
        elif kind == "ssh_open":
            # connect before handling the next message: its data may follow at once
            conn = self._open_ssh(msg.ssh_open)
            if conn is not None:
                self._spawn(self._pump_ssh, msg.ssh_open.conn_id, conn)
        elif kind == "ssh_data":
            with self._lock:
                conn = self._ssh.get(msg.ssh_data.conn_id)
            if conn is not None:
                try:
                    conn.sendall(msg.ssh_data.data)
                except OSError:
                    self._close_ssh(msg.ssh_data.conn_id, notify=True)
        elif kind == "ssh_close":
            self._close_ssh(msg.ssh_close.conn_id, notify=False)
        elif kind == "output_begin":
            ob = msg.output_begin
            spec = self.req.outputs[ob.index]
            try:
                self._outputs[ob.index] = _OutputWriter(spec, ob.kind)
            except OSError as err:
                self.send(pb.SessionMessage(output_ack=pb.OutputAck(index=ob.index,
                                                                    error=str(err))))
        elif kind == "output_data":
            writer = self._outputs.get(msg.output_data.index)
            if writer is not None:
                writer.write(msg.output_data.data)
        elif kind == "output_end":
            writer = self._outputs.pop(msg.output_end.index, None)
            if writer is not None:
                error = writer.finish()
                self.send(pb.SessionMessage(output_ack=pb.OutputAck(
                    index=msg.output_end.index, error=error)))

    def _send_listing(self, name: str) -> None:
        sender = self.senders.get(name)
        try:
            if sender is None:
                raise UsageError(f"this client lends no directory {name!r}")
            for batch in sender.listing():
                self.send(pb.SessionMessage(sync_stats=pb.SyncStats(name=name, stats=batch)))
            self.send(pb.SessionMessage(sync_stats=pb.SyncStats(name=name, done=True)))
        except (UserError, OSError) as err:
            self.send(pb.SessionMessage(sync_stats=pb.SyncStats(
                name=name, done=True, error=getattr(err, "message", str(err)))))

    def _send_files(self, req: pb.FileRequest) -> None:
        sender = self.senders[req.name]
        if req.hash_only:
            try:
                hashes = sender.hashes(list(req.ids))
            except OSError as err:
                self.send(pb.SessionMessage(file_data=pb.FileData(name=req.name,
                                                                  error=str(err))))
                return
            self.send(pb.SessionMessage(file_hashes=pb.FileHashes(name=req.name,
                                                                  hashes=hashes)))
            return
        for fid in req.ids:
            try:
                for frame in sender.chunks(fid):
                    self.send(pb.SessionMessage(file_data=pb.FileData(
                        name=req.name, id=fid, data=frame)))
            except OSError as err:
                self.send(pb.SessionMessage(file_data=pb.FileData(
                    name=req.name, id=fid, error=f"{sender.path(fid)}: {err.strerror}")))
                return
            self.send(pb.SessionMessage(file_data=pb.FileData(name=req.name, id=fid, eof=True)))

    def _send_secret(self, req: pb.SecretRequest) -> None:
        spec = self._secrets.get(req.id)
        value = pb.SecretValue(req_id=req.req_id, found=False)
        if spec is not None:
            try:
                value = pb.SecretValue(req_id=req.req_id, found=True, data=spec.read())
            except UserError as err:
                self.error = err.message
        self.send(pb.SessionMessage(secret_value=value))

    def _open_ssh(self, req: pb.SSHOpen) -> socket.socket | None:
        spec = self._ssh_specs.get(req.ssh_id)
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if spec is None or not spec.paths:
                raise OSError(f"no ssh agent {req.ssh_id!r}")
            conn.connect(spec.paths[0])
        except OSError:
            conn.close()
            self.send(pb.SessionMessage(ssh_close=pb.SSHClose(conn_id=req.conn_id)))
            return None
        with self._lock:
            self._ssh[req.conn_id] = conn
        return conn

    def _pump_ssh(self, conn_id: int, conn: socket.socket) -> None:
        try:
            while data := conn.recv(65536):
                self.send(pb.SessionMessage(ssh_data=pb.SSHData(conn_id=conn_id, data=data)))
        except OSError:
            pass
        self._close_ssh(conn_id, notify=True)

    def _close_ssh(self, conn_id: int, *, notify: bool) -> None:
        with self._lock:
            conn = self._ssh.pop(conn_id, None)
        if conn is None:
            return
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()
        if notify:
            self.send(pb.SessionMessage(ssh_close=pb.SSHClose(conn_id=conn_id)))


# ---------------------------------------------------------------- the client


@dataclass
class RemoteClient:
    """A client of one ``bkpyd`` endpoint."""

    endpoint: str
    tls: TLSFiles | None = None

    def __post_init__(self) -> None:
        self._channel: grpc.Channel | None = None

    @property
    def stub(self) -> pb_grpc.ControlStub:
        if self._channel is None:
            target = grpc_target(self.endpoint)
            options: list[tuple[str, Any]] = [
                ("grpc.max_receive_message_length", 16 << 20),
                       ("grpc.max_send_message_length", 16 << 20)]
            if self.tls is not None and self.tls.enabled and not self.endpoint.startswith(
                    "unix://"):
                if self.tls.servername:
                    options.append(("grpc.ssl_target_name_override", self.tls.servername))
                self._channel = grpc.secure_channel(target, self.tls.channel_credentials(),
                                                    options=options)
            else:
                self._channel = grpc.insecure_channel(target, options=options)
        return pb_grpc.ControlStub(self._channel)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    # ---------------------------------------------------------------- info

    def info(self, timeout: float | None = 10.0) -> dict[str, str]:
        try:
            resp = self.stub.Info(pb.InfoRequest(), timeout=timeout)
        except grpc.RpcError as err:
            raise _rpc_error(err, self.endpoint) from None
        return {"package": resp.package, "version": resp.version, "revision": resp.revision}

    def ping(self, timeout: float = 1.0) -> bool:
        try:
            self.info(timeout=timeout)
        except UserError:
            return False
        return True

    def workers(self) -> list[WorkerInfo]:
        try:
            resp = self.stub.ListWorkers(pb.ListWorkersRequest(), timeout=30)
            version = self.info()["version"]
        except grpc.RpcError as err:
            raise _rpc_error(err, self.endpoint) from None
        return [WorkerInfo(w.id, list(w.platforms), list(w.emulated_platforms),
                           dict(w.labels), version) for w in resp.workers]

    # ---------------------------------------------------------------- cache

    def disk_usage(self, verify: bool = False) -> list[UsageItem]:
        try:
            # hashing every blob takes as long as reading the whole content store
            resp = self.stub.DiskUsage(pb.DiskUsageRequest(verify=verify),
                                       timeout=None if verify else 300)
        except grpc.RpcError as err:
            raise _rpc_error(err, self.endpoint) from None
        return [_usage_item(r) for r in resp.records]

    def prune(self, opts: PruneOptions) -> Iterator[UsageItem]:
        req = pb.PruneRequest(all=opts.all, corrupt=opts.corrupt)
        if opts.keep_duration is not None:
            req.keep_duration = opts.keep_duration
        if opts.keep_storage is not None:
            req.keep_storage = opts.keep_storage
        try:
            for r in self.stub.Prune(req):
                yield _usage_item(r)
        except grpc.RpcError as err:
            raise _rpc_error(err, self.endpoint) from None

    # ---------------------------------------------------------------- builds

    def _solve_request(self, req: BuildRequest, ref: str, session_id: str,
                       senders: dict[str, ContextSender]) -> pb.SolveRequest:
        build_args = dict(req.build_args)
        # as buildx does: SOURCE_DATE_EPOCH from the client's environment
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        if epoch and "SOURCE_DATE_EPOCH" not in build_args:
            build_args["SOURCE_DATE_EPOCH"] = epoch
        ignore = senders["context"].ignore_patterns if "context" in senders else []
        return pb.SolveRequest(
            ref=ref, session_id=session_id, dockerfile=req.dockerfile_data,
            dockerfile_name=req.dockerfile.name if req.dockerfile else "Dockerfile",
            ignore_patterns=ignore, has_context=req.context is not None,
            tags=req.tags, target=req.target or "", platforms=req.platforms,
            build_args=build_args, build_contexts=req.build_contexts,
            secret_ids=[s.id for s in req.secrets], ssh_ids=[s.id for s in req.ssh],
            no_cache=req.no_cache, no_cache_filter=req.no_cache_filter, pull=req.pull,
            outputs=[pb.Output(type=o.type, attrs=o.attrs) for o in req.outputs],
            labels=req.labels, network=req.network, entitlements=req.entitlements,
            extra_hosts=[f"{name}={ip}" for name, ip in req.extra_hosts],
            shm_size=req.shm_size,
            ulimits=[f"{name}={soft}:{hard}" for name, soft, hard in req.ulimits],
            cache_to=[pb.CacheSpec(attrs=c) for c in req.cache_to],
            cache_from=[pb.CacheSpec(attrs=c) for c in req.cache_from],
            want_iid=req.iidfile is not None, want_metadata=req.metadata_file is not None,
            local_dirs=[pb.LocalDir(name=name, context_id=context_id(name, s.root))
                        for name, s in senders.items()])

    @staticmethod
    def _senders(req: BuildRequest) -> dict[str, ContextSender]:
        from buildkit_py.frontend.dockerfile.dockerignore import (
            find_ignore_file,
            read_ignore_file,
        )

        senders: dict[str, ContextSender] = {}
        if req.context is not None:
            ignore_file = find_ignore_file(req.context, req.dockerfile)
            ignore = read_ignore_file(ignore_file) if ignore_file is not None else []
            senders["context"] = ContextSender(req.context.absolute(), ignore)
        for cname, value in req.build_contexts.items():
            if "://" not in value:
                path = Path(value)
                if not path.is_dir():
                    raise UsageError(f"--build-context {cname}={value}: not a directory")
                # a named context is filtered by its own .dockerignore (as BuildKit)
                own = path / ".dockerignore"
                senders[f"ctx-{cname}"] = ContextSender(
                    path.absolute(), read_ignore_file(own) if own.is_file() else [])
        return senders

    def build(self, req: BuildRequest, progress: ProgressSink) -> BuildOutcome:
        senders = self._senders(req)
        ref, session_id = uuid.uuid4().hex, uuid.uuid4().hex
        solve_req = self._solve_request(req, ref, session_id, senders)
        stub = self.stub
        session = ClientSession(req, senders)
        try:
            responses = stub.Session(session.requests(),
                                     metadata=((SESSION_ID_KEY, session_id),))
        except grpc.RpcError as err:
            raise _rpc_error(err, self.endpoint) from None
        reader = threading.Thread(target=session.serve, args=(responses,), daemon=True,
                                  name="session")
        reader.start()
        status = stub.Status(pb.StatusRequest(ref=ref))

        def pump_status() -> None:
            try:
                for resp in status:
                    for e in resp.events:
                        ev = event_from_pb(e)
                        if ev is not None:
                            progress(ev)
            except grpc.RpcError:
                pass

        status_thread = threading.Thread(target=pump_status, daemon=True, name="status")
        status_thread.start()
        try:
            resp = stub.Solve(solve_req, wait_for_ready=False)
        except grpc.RpcError as err:
            raise _rpc_error(err, self.endpoint) from None
        finally:
            status_thread.join(timeout=30)
            if status_thread.is_alive():
                status.cancel()
            session.close()
            responses.cancel()
            reader.join(timeout=30)
        outcome = BuildOutcome(image_id=resp.image_id or None,
                               metadata=json.loads(resp.metadata_json or "{}"),
                               ran=resp.ran, cached=resp.cached, warnings=list(resp.warnings))
        if req.iidfile is not None and outcome.image_id:
            req.iidfile.write_text(outcome.image_id)
        if req.metadata_file is not None:
            req.metadata_file.write_text(json.dumps(outcome.metadata, indent=2) + "\n")
        return outcome


def _usage_item(r: pb.UsageRecord) -> UsageItem:
    return UsageItem(r.id, r.size, r.created_at, r.last_used_at, r.description,
                     r.usage_count, r.in_use, r.record_type or "regular")


# ---------------------------------------------------------------- several nodes


@dataclass
class NodeTarget:
    name: str
    client: RemoteClient
    platforms: list[str]  # configured with --platform (may be empty)


def _rank(node_platform: str, wanted: str) -> int | None:
    from buildkit_py.platforms import match_rank, parse_platform

    try:
        return match_rank(parse_platform(node_platform), parse_platform(wanted))
    except UsageError:
        return None


def _best(wanted: str, candidates: list[list[str]]) -> int | None:
    best: tuple[int, int] | None = None
    for index, plats in enumerate(candidates):
        for p in plats:
            rank = _rank(p, wanted)
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, index)
    return None if best is None else best[1]


def route_platforms(platforms: list[str], nodes: list[NodeTarget],
                    workers: Callable[[int], WorkerInfo | None]) -> dict[int, list[str]]:
    """Which node builds which platform (buildx's rules, reference §8.4).

    First every platform against the nodes' configured platforms; if that places them
    all, done. Otherwise ask each node's workers and prefer, in order: a configured
    match, a native one, an emulated one; what nothing matches goes to the first node.
    """
    if not platforms:
        return {0: []}
    groups: dict[int, list[str]] = {}
    configured = [n.platforms for n in nodes]
    strict = {p: _best(p, configured) for p in platforms}
    if all(i is not None for i in strict.values()):
        for p, i in strict.items():
            groups.setdefault(i or 0, []).append(p)
        return groups
    infos = [workers(i) for i in range(len(nodes))]
    native = [[p for p in (w.platforms if w else []) if p not in (w.emulated if w else [])]
              for w in infos]
    emulated = [list(w.emulated) if w else [] for w in infos]
    for p in platforms:
        choice = strict[p]
        if choice is None:
            choice = _best(p, native)
        if choice is None:
            choice = _best(p, emulated)
        groups.setdefault(choice or 0, []).append(p)
    return groups


def _pushes(o: OutputSpec) -> bool:
    return o.type == "registry" or (o.type == "image" and o.attrs.get("push") == "true")


def _joins_images(o: OutputSpec) -> bool:
    """Outputs that need one image index over every node's platforms."""
    return _pushes(o) or o.type in ("oci", "docker")


# exporter attributes that shape the images themselves (the same on every node)
_IMAGE_ATTRS = ("compression", "compression-level", "force-compression", "rewrite-timestamp")


def _layout_output(o: OutputSpec, dest: Path) -> OutputSpec:
    """What a node exports so the client can join it: an OCI layout folder."""
    attrs = {k: v for k, v in o.attrs.items() if k in _IMAGE_ATTRS}
    attrs["oci-mediatypes"] = o.attrs.get("oci-mediatypes",
                                          "false" if o.type == "docker" else "true")
    attrs.update(dest=str(dest), tar="false")
    return OutputSpec("oci", attrs)


def _image_names(o: OutputSpec, req: BuildRequest) -> list[str]:
    return [n for n in o.attrs.get("name", "").split(",") if n] or list(req.tags)


class MultiNodeClient:
    """A builder with several nodes: each platform is built on a node that runs it
    natively where possible, the nodes in parallel.

    Combining results (what buildx gives): ``type=local`` outputs get one sub-directory per
    platform (``linux_amd64/``...) whichever node built it, and ``type=tar`` one folder
    per platform in one tarball; ``type=image`` without push stores each node's platforms
    in that node's image store. Pushes (``--push``, ``type=registry``) and ``type=oci`` /
    ``type=docker`` outputs get one image index over all platforms: each node exports its
    platforms as an OCI layout to the client, which joins them (imagetools create) and
    pushes the manifests by digest and the index under every tag, or writes one layout.
    ``--metadata-file`` holds the index digest (``containerimage.digest``) when there is
    one, and one entry per node under ``"nodes"``; ``--iidfile`` the index digest, else
    the first node's image id.
    """

    def __init__(self, nodes: list[NodeTarget]) -> None:
        self.nodes = nodes
        self._workers: dict[int, WorkerInfo | None] = {}

    def close(self) -> None:
        for n in self.nodes:
            n.client.close()

    def _worker(self, index: int) -> WorkerInfo | None:
        if index not in self._workers:
            try:
                found = self.nodes[index].client.workers()
            except UserError:
                found = []
            self._workers[index] = found[0] if found else None
        return self._workers[index]

    def workers(self) -> list[WorkerInfo]:
        out: list[WorkerInfo] = []
        for i in range(len(self.nodes)):
            w = self._worker(i)
            if w is not None:
                out.append(w)
        return out

    def disk_usage(self, verify: bool = False) -> list[UsageItem]:
        return [dataclasses.replace(item, id=f"{n.name}/{item.id}")
                for n in self.nodes for item in n.client.disk_usage(verify)]

    def prune(self, opts: PruneOptions) -> Iterator[UsageItem]:
        for n in self.nodes:
            for item in n.client.prune(opts):
                yield dataclasses.replace(item, id=f"{n.name}/{item.id}")

    def build(self, req: BuildRequest, progress: ProgressSink) -> BuildOutcome:
        groups = route_platforms(req.platforms, self.nodes, self._worker)
        if len(groups) == 1:
            return self.nodes[next(iter(groups))].client.build(req, progress)
        for o in req.outputs:
            if _pushes(o) and not _image_names(o, req):
                # refuse before building, as a one-node build would after it
                raise UsageError("pushing needs an image name",
                                 hint="add -t NAME or --output type=image,name=NAME,push=true")
        if any(_joins_images(o) for o in req.outputs):
            from buildkit_py.imagetools.create import parse_targets

            for o in req.outputs:
                if _pushes(o):
                    parse_targets(_image_names(o, req))
        return self._build_split(req, groups, progress)

    def _node_request(self, req: BuildRequest, index: int, plats: list[str],
                      tmp: Path) -> BuildRequest:
        """The part of ``req`` that node ``index`` builds, its outputs redirected to what
        the client joins afterwards."""
        from buildkit_py.platforms import parse_platform

        outputs: list[OutputSpec] = []
        layout_asked = False
        for k, o in enumerate(req.outputs):
            attrs = dict(o.attrs)
            if _joins_images(o):
                if not layout_asked:  # one layout serves every joined output
                    outputs.append(_layout_output(o, tmp / f"layout-{index}"))
                    layout_asked = True
                continue
            if o.type == "local" and len(plats) == 1:
                sub = parse_platform(plats[0]).for_path()
                attrs["dest"] = str(Path(o.dest or ".") / sub)
            elif o.type == "tar":
                attrs["dest"] = str(tmp / f"tar-{index}-{k}.tar")
            outputs.append(OutputSpec(o.type, attrs))
        return dataclasses.replace(
            req, platforms=plats, outputs=outputs,
            iidfile=tmp / f"{index}.iid" if req.iidfile else None,
            metadata_file=tmp / f"{index}.json" if req.metadata_file else None)

    def _build_split(self, req: BuildRequest, groups: dict[int, list[str]],
                     progress: ProgressSink) -> BuildOutcome:
        results: dict[int, BuildOutcome] = {}
        errors: dict[int, BaseException] = {}
        with tempfile.TemporaryDirectory(prefix="bkpy-nodes-") as tmpdir:
            tmp = Path(tmpdir)
            requests = {i: self._node_request(req, i, p, tmp) for i, p in groups.items()}

            def run(index: int) -> None:
                node = self.nodes[index]
                try:
                    results[index] = node.client.build(requests[index],
                                                       _prefixed(progress, node.name))
                except BaseException as err:
                    errors[index] = err

            threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in groups]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise errors[min(errors)]
            order = list(groups)  # the order the platforms were asked in
            first = results[min(results)]
            outcome = BuildOutcome(
                image_id=first.image_id,
                metadata={"nodes": [{"name": self.nodes[i].name, "platforms": groups[i],
                                     **results[i].metadata} for i in sorted(results)]},
                ran=sum(r.ran for r in results.values()),
                cached=sum(r.cached for r in results.values()),
                warnings=[w for i in sorted(results) for w in results[i].warnings])
            self._join(req, groups, order, tmp, outcome, progress)
        if req.iidfile is not None and outcome.image_id:
            req.iidfile.write_text(outcome.image_id)
        if req.metadata_file is not None:
            req.metadata_file.write_text(json.dumps(outcome.metadata, indent=2) + "\n")
        return outcome

    def _join(self, req: BuildRequest, groups: dict[int, list[str]], order: list[int],
              tmp: Path, outcome: BuildOutcome,
              progress: ProgressSink) -> None:
        """Turn the nodes' exports into the outputs the user asked for."""
        from buildkit_py.client.node_results import JoinedImage, join_tars
        from buildkit_py.platforms import parse_platform

        joined: JoinedImage | None = None
        if any(_joins_images(o) for o in req.outputs):
            with _step(progress, "merging image manifests of every node into one index"):
                joined = JoinedImage([(self.nodes[i].name, tmp / f"layout-{i}")
                                      for i in order])
            outcome.image_id = joined.digest
            outcome.metadata = {"containerimage.digest": joined.digest,
                                "containerimage.descriptor": joined.descriptor(),
                                **outcome.metadata}
        for k, o in enumerate(req.outputs):
            names = _image_names(o, req)
            if joined is not None and _pushes(o):
                for name in names:
                    with _step(progress, f"pushing {name} (image index)"):
                        joined.push([name], tmp / "push-store")
                outcome.metadata.setdefault("image.name", ",".join(names))
            elif joined is not None and o.type in ("oci", "docker"):
                with _step(progress, f"exporting to {o.type} image format"):
                    joined.write_layout(o.dest or "-", names,
                                        tar=o.attrs.get("tar", "true") != "false",
                                        docker=o.type == "docker")
            elif o.type == "tar":
                # a node of one platform sent it unprefixed; one of several, in folders
                parts = [(parse_platform(groups[i][0]).for_path() if len(groups[i]) == 1
                          else "", tmp / f"tar-{i}-{k}.tar") for i in order]
                with _step(progress, "sending tarball"):
                    join_tars(parts, o.dest or "-")

_step_counter = iter(range(1, 1 << 30))


@contextlib.contextmanager
def _step(progress: ProgressSink, name: str) -> Iterator[None]:
    """Report a client-side step of a multi-node build as a vertex of its own."""
    from buildkit_py.solver.progress import VertexCompleted, VertexFailed, VertexStarted

    digest, started = f"client:{next(_step_counter)}", time.time()
    progress(VertexStarted(digest, name, started))
    try:
        yield
    except BaseException as err:
        progress(VertexFailed(digest, name, started, time.time(), str(err)))
        raise
    progress(VertexCompleted(digest, name, started, time.time()))


def _prefixed(progress: ProgressSink, node: str) -> ProgressSink:
    """Keep vertices of different nodes apart in one display."""

    def emit(ev: ProgressEvent) -> None:
        changes: dict[str, Any] = {"digest": f"{node}:{ev.digest}"}
        name = getattr(ev, "name", None)
        if name:
            changes["name"] = f"[{node}] {name}"
        progress(dataclasses.replace(ev, **changes))

    return emit
