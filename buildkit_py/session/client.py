"""The client's end of a session: what ``bkpy`` lends one remote build.

The daemon asks, the client answers: listings and contents of the lent directories
(``.dockerignore`` applied here, so ignored files never leave the client; ``type=local``
cache directories file by file, as the daemon asks), secret values
read when a step needs them (never stored on the daemon), connections to the local ssh
agents. Exporter output the daemon sends back is handed to writers the caller opens
(:class:`OutputOpener`): where output lands is the client's business, not the session's.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import grpc

from buildkit_py.api import control_pb2 as pb
from buildkit_py.api.request import BuildRequest
from buildkit_py.api.wire import lent_cache_name
from buildkit_py.errors import UsageError, UserError
from buildkit_py.frontend.dockerfile.dockerignore import find_ignore_file, read_ignore_file
from buildkit_py.session.filesync import ContextSender
from buildkit_py.session.stream import TERMINAL_ID, Outbox, SessionClosedError, SSHRelay


class OutputWriter(Protocol):
    """Writes one exporter output as its zstd frames arrive."""

    def write(self, frame: bytes) -> None: ...

    def finish(self) -> str:
        """Flush and close; the error to report to the daemon, or ``""``."""
        ...


# (index of the output in the request, "file" | "tar") -> its writer; OSError: refused
OutputOpener = Callable[[int, str], OutputWriter]


def node_id() -> str:
    """A stable id of this client machine (for the daemon's per-context copies)."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            return Path(path).read_text().strip() + "@" + socket.gethostname()
        except OSError:
            continue
    return socket.gethostname()


def context_id(name: str, path: Path) -> str:
    """Which of the daemon's synced copies a lent directory updates: one per client
    machine, name and path, so the next build re-sends only what changed."""
    raw = f"{node_id()}:{name}:{path.absolute()}"
    return hashlib.sha256(raw.encode()).hexdigest()


def lent_directories(req: BuildRequest) -> dict[str, ContextSender]:
    """The directories ``req`` lends, by session name: ``context`` and ``ctx-NAME``
    for each ``--build-context NAME=DIR``, each with its ignore rules."""
    senders: dict[str, ContextSender] = {}
    if req.context is not None:
        ignore_file = find_ignore_file(req.context, req.dockerfile)
        ignore = read_ignore_file(ignore_file) if ignore_file is not None else []
        senders["context"] = ContextSender(req.context.absolute(), ignore)
    for cname, value in req.build_contexts.items():
        # reason: the frontend's URL grammar only when there are named contexts
        from buildkit_py.frontend.dockerfile.convert.remote_context import names_directory

        if names_directory(value):  # URLs (and images) travel in the request as they are
            path = Path(value)
            if not path.is_dir():
                raise UsageError(f"--build-context {cname}={value}: not a directory")
            # a named context is filtered by its own .dockerignore (as BuildKit)
            own = path / ".dockerignore"
            senders[f"ctx-{cname}"] = ContextSender(
                path.absolute(), read_ignore_file(own) if own.is_file() else [])
    return senders


def lent_caches(req: BuildRequest) -> dict[str, ContextSender]:
    """The ``type=local`` cache directories ``req`` lends, by session name: each
    ``--cache-from`` src (the daemon reads index.json and the blobs it needs, file by
    file) and each ``--cache-to`` dest (listed, so the daemon sends only missing blobs).
    Never synced up front; a directory that does not exist answers with an error."""
    senders: dict[str, ContextSender] = {}
    for flag, specs, key in (("from", req.cache_from, "src"), ("to", req.cache_to, "dest")):
        for i, attrs in enumerate(specs):
            if attrs.get("type") == "local" and attrs.get(key):
                senders[lent_cache_name(flag, i)] = ContextSender(
                    Path(attrs[key]).absolute(), [])
    return senders


def _no_outputs(index: int, kind: str) -> OutputWriter:
    raise OSError("this client takes no output back")


class ClientSession:
    """Answers the daemon's requests for one build."""

    def __init__(self, req: BuildRequest, senders: dict[str, ContextSender],
                 open_output: OutputOpener = _no_outputs) -> None:
        self.req = req
        self.senders = senders
        self._open_output = open_output
        self._outbox = Outbox(maxsize=64)
        self._secrets = {s.id: s for s in req.secrets}
        self._ssh_specs = {s.id: s for s in req.ssh}
        self._ssh = SSHRelay(self._outbox.send)
        self._outputs: dict[int, OutputWriter] = {}
        self.error: str | None = None
        self._handlers: dict[str, Callable[[pb.SessionMessage], None]] = {
            "sync_start": lambda m: self._spawn(self._send_listing, m.sync_start.name),
            "file_request": lambda m: self._spawn(self._send_files, m.file_request),
            "secret_request": lambda m: self._spawn(self._send_secret, m.secret_request),
            # connect before handling the next message: its data may follow at once
            "ssh_open": lambda m: self._open_ssh(m.ssh_open),
            "ssh_data": lambda m: self._ssh.deliver(m.ssh_data),
            "ssh_close": lambda m: self._ssh.drop(m.ssh_close.conn_id, notify=False),
            "output_begin": lambda m: self._begin_output(m.output_begin),
            "output_data": lambda m: self._output_data(m.output_data),
            "output_end": lambda m: self._end_output(m.output_end.index),
        }

    def requests(self) -> Iterator[pb.SessionMessage]:
        """The client's messages, for the gRPC request stream."""
        return self._outbox.messages()

    def send(self, msg: pb.SessionMessage) -> None:
        """Queue ``msg`` for the daemon; dropped once the session is closed."""
        with contextlib.suppress(SessionClosedError):
            self._outbox.send(msg)

    def close(self) -> None:
        self._outbox.close()
        self._ssh.close_all()

    def serve(self, responses: Iterator[pb.SessionMessage]) -> None:
        """Handle the daemon's messages (on a reader thread) until the stream ends."""
        try:
            for msg in responses:
                handler = self._handlers.get(msg.WhichOneof("msg") or "")
                if handler is not None:
                    handler(msg)
        except grpc.RpcError:
            pass  # the build's own call reports what went wrong
        finally:
            for w in list(self._outputs.values()):
                w.finish()

    @staticmethod
    def _spawn(fn: Callable[..., None], *args: Any) -> None:
        threading.Thread(target=fn, args=args, daemon=True).start()

    # ---------------------------------------------------------------- lent directories

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

    # ---------------------------------------------------------------- secrets, ssh

    def _send_secret(self, req: pb.SecretRequest) -> None:
        spec = self._secrets.get(req.id)
        value = pb.SecretValue(req_id=req.req_id, found=False)
        if spec is not None:
            try:
                value = pb.SecretValue(req_id=req.req_id, found=True, data=spec.read())
            except UserError as err:
                self.error = err.message
        self.send(pb.SessionMessage(secret_value=value))

    def _open_ssh(self, req: pb.SSHOpen) -> None:
        if req.ssh_id == TERMINAL_ID and self.req.debug_shell:
            self._open_terminal(req.conn_id)
            return
        spec = self._ssh_specs.get(req.ssh_id)
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if spec is None or not spec.paths:
                raise OSError(f"no ssh agent {req.ssh_id!r}")
            conn.connect(spec.paths[0])
        except OSError:
            conn.close()
            self.send(pb.SessionMessage(ssh_close=pb.SSHClose(conn_id=req.conn_id)))
            return
        self._ssh.add(req.conn_id, conn)
        self._ssh.start(req.conn_id, conn)

    def _open_terminal(self, conn_id: int) -> None:
        """The step debugger's shell on the daemon: our terminal (stdin/stdout, raw while
        it runs) relayed to it until the daemon closes the connection."""
        # reason: the terminal relay (termios, tty) is for the step debugger only
        from buildkit_py.executor.terminal import relay

        ours, theirs = socket.socketpair()

        def run() -> None:
            with ours:
                relay(ours.fileno(), inp=0, out=1)

        threading.Thread(target=run, name="bkpy-debug-terminal", daemon=True).start()
        self._ssh.add(conn_id, theirs)
        self._ssh.start(conn_id, theirs)

    # ---------------------------------------------------------------- outputs

    def _begin_output(self, ob: pb.OutputBegin) -> None:
        try:
            self._outputs[ob.index] = self._open_output(ob.index, ob.kind)
        except OSError as err:
            self.send(pb.SessionMessage(output_ack=pb.OutputAck(index=ob.index,
                                                                error=str(err))))

    def _output_data(self, od: pb.OutputData) -> None:
        writer = self._outputs.get(od.index)
        if writer is not None:
            writer.write(od.data)

    def _end_output(self, index: int) -> None:
        writer = self._outputs.pop(index, None)
        if writer is not None:
            error = writer.finish()
            self.send(pb.SessionMessage(output_ack=pb.OutputAck(index=index, error=error)))
