"""The daemon's end of a client session: context sync, secrets, ssh agents, outputs.

A client opens one ``Session`` stream per build. Messages from the client are routed
by a reader thread, by kind (file listings and data to the running sync, secret values
and output acknowledgements to their waiters, ssh traffic to the relay); the daemon's
messages leave through one bounded :class:`~buildkit_py.session.stream.Outbox`.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import socket
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from buildkit_py.api import control_pb2 as pb
from buildkit_py.errors import BuildError
from buildkit_py.session.filesync import ContextReceiver, SyncStats
from buildkit_py.session.stream import (
    POLL,
    TERMINAL_ID,
    Outbox,
    SessionClosedError,
    SSHRelay,
    close_socket,
)
from buildkit_py.worker.session import BuildSession, LentFiles

_log = logging.getLogger(__name__)

SECRET_TIMEOUT = 60.0
SYNC_TIMEOUT = 300.0


class _Waiter:
    """A one-shot slot a reader thread fills for a waiting build thread."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.value: pb.SessionMessage | None = None

    def set(self, value: pb.SessionMessage) -> None:
        self.value = value
        self._event.set()

    def wait(self, closed: threading.Event, timeout: float, what: str) -> pb.SessionMessage:
        waited = 0.0
        while not self._event.wait(POLL):
            if closed.is_set():
                raise SessionClosedError(what)
            waited += POLL
            if waited >= timeout:
                raise BuildError(f"the client did not answer in {timeout:.0f}s while {what}")
        assert self.value is not None
        return self.value


class DaemonSession:
    """The daemon's end of one client's session."""

    def __init__(self, session_id: str) -> None:
        self.id = session_id
        self._outbox = Outbox(maxsize=256)
        self.closed = self._outbox.closed
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._channels: dict[str, queue.Queue[pb.SessionMessage]] = {}
        self._waiters: dict[tuple[str, int], _Waiter] = {}
        self._ssh = SSHRelay(self.send)
        self._handlers: dict[str, Callable[[pb.SessionMessage], None]] = {
            "sync_stats": self._to_sync,
            "file_hashes": self._to_sync,
            "file_data": self._to_sync,
            "secret_value": lambda m: self._fill("secret", m.secret_value.req_id, m),
            "output_ack": lambda m: self._fill("output", m.output_ack.index, m),
            "ssh_data": lambda m: self._ssh.deliver(m.ssh_data),
            "ssh_close": lambda m: self._ssh.drop(m.ssh_close.conn_id, notify=False),
        }

    # ---------------------------------------------------------------- plumbing

    def next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def send(self, msg: pb.SessionMessage) -> None:
        self._outbox.send(msg)

    def outgoing(self) -> Iterator[pb.SessionMessage]:
        """The daemon's messages, for the gRPC response stream."""
        return self._outbox.messages()

    def consume(self, incoming: Iterable[pb.SessionMessage]) -> None:
        """Route the client's messages until its stream ends (run on a reader thread)."""
        try:
            for msg in incoming:
                self._dispatch(msg)
        except Exception as err:  # the stream broke: the client is gone
            _log.debug("session %s ended: %s", self.id, err)
        finally:
            self.close()

    def close(self) -> None:
        self._outbox.close()
        self._ssh.close_all()

    def _waiter(self, kind: str, key: int) -> _Waiter:
        w = _Waiter()
        with self._lock:
            self._waiters[(kind, key)] = w
        return w

    def _fill(self, kind: str, key: int, msg: pb.SessionMessage) -> None:
        with self._lock:
            w = self._waiters.pop((kind, key), None)
        if w is not None:
            w.set(msg)

    def _dispatch(self, msg: pb.SessionMessage) -> None:
        handler = self._handlers.get(msg.WhichOneof("msg") or "")
        if handler is not None:
            handler(msg)

    def _to_sync(self, msg: pb.SessionMessage) -> None:
        """File listings, hashes and data go to the running sync of their directory."""
        name = getattr(msg, msg.WhichOneof("msg") or "").name
        with self._lock:
            chan = self._channels.get(name)
        if chan is not None:
            chan.put(msg)

    # ---------------------------------------------------------------- context sync

    def _next(self, chan: queue.Queue[pb.SessionMessage], what: str) -> pb.SessionMessage:
        waited = 0.0
        while True:
            try:
                return chan.get(timeout=POLL)
            except queue.Empty:
                if self.closed.is_set():
                    raise SessionClosedError(what) from None
                waited += POLL
                if waited >= SYNC_TIMEOUT:
                    raise BuildError(f"the client sent nothing for {SYNC_TIMEOUT:.0f}s "
                                     f"while {what}") from None

    @contextlib.contextmanager
    def _channel(self, name: str) -> Iterator[queue.Queue[pb.SessionMessage]]:
        """The client's file messages for directory ``name``, while one transfer of it
        runs."""
        chan: queue.Queue[pb.SessionMessage] = queue.Queue(maxsize=64)
        with self._lock:
            self._channels[name] = chan
        try:
            yield chan
        finally:
            with self._lock:
                self._channels.pop(name, None)

    def _listing(self, name: str, chan: queue.Queue[pb.SessionMessage],
                 what: str) -> list[pb.Stat]:
        self.send(pb.SessionMessage(sync_start=pb.SyncStart(name=name)))
        listing: list[pb.Stat] = []
        while True:
            msg = self._next(chan, what)
            if msg.WhichOneof("msg") != "sync_stats":
                continue
            if msg.sync_stats.error:
                raise BuildError(f"the client cannot send {name!r}: {msg.sync_stats.error}")
            listing.extend(msg.sync_stats.stats)
            if msg.sync_stats.done:
                return listing

    def listing(self, name: str) -> list[pb.Stat] | None:
        """What the client's directory ``name`` holds; None when it cannot list it (say,
        it does not exist)."""
        with self._channel(name) as chan:
            try:
                return self._listing(name, chan, f"listing {name!r}")
            except BuildError:
                return None

    def fetch_file(self, name: str, file_id: int, target: Path) -> None:
        """Entry ``file_id`` of the last listing of ``name``, written to ``target``."""
        import zstandard  # reason: only transfers need it

        decomp = zstandard.ZstdDecompressor()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        what = f"fetching a file of {name!r}"
        with self._channel(name) as chan, open(tmp, "wb") as out:
            self.send(pb.SessionMessage(file_request=pb.FileRequest(name=name,
                                                                    ids=[file_id])))
            while True:
                msg = self._next(chan, what)
                if msg.WhichOneof("msg") != "file_data" or msg.file_data.id != file_id:
                    continue
                fd = msg.file_data
                if fd.error:
                    raise BuildError(f"the client cannot send a file of {name!r}: {fd.error}")
                if fd.data:
                    out.write(decomp.decompress(fd.data))
                if fd.eof:
                    break
        tmp.replace(target)

    def sync(self, name: str, dest: Path, incoming: Path) -> SyncStats:
        """Bring ``dest`` up to date with the client's directory ``name``."""
        what = f"transferring {name!r}"
        receiver = ContextReceiver(dest, incoming)
        try:
            with self._channel(name) as chan:
                listing = self._listing(name, chan, what)
                to_hash, to_fetch = receiver.plan(listing)
                if to_hash:
                    self.send(pb.SessionMessage(file_request=pb.FileRequest(
                        name=name, ids=to_hash, hash_only=True)))
                    got: list[pb.FileHash] = []
                    while len(got) < len(to_hash):
                        msg = self._next(chan, what)
                        if msg.WhichOneof("msg") == "file_hashes":
                            got.extend(msg.file_hashes.hashes)
                    to_fetch.extend(receiver.check_hashes(got))
                if to_fetch:
                    self.send(pb.SessionMessage(file_request=pb.FileRequest(
                        name=name, ids=to_fetch)))
                    pending = set(to_fetch)
                    while pending:
                        msg = self._next(chan, what)
                        if msg.WhichOneof("msg") != "file_data":
                            continue
                        fd = msg.file_data
                        if fd.error:
                            raise BuildError(
                                f"the client cannot send a file of {name!r}: {fd.error}")
                        if fd.data:
                            receiver.write(fd.id, fd.data)
                        if fd.eof:
                            receiver.end(fd.id)
                            pending.discard(fd.id)
                return receiver.finish()
        finally:
            receiver.abort()

    # ---------------------------------------------------------------- secrets

    def secret(self, sid: str) -> bytes | None:
        """Ask the client for a secret now; the daemon never stores it."""
        req_id = self.next_id()
        w = self._waiter("secret", req_id)
        self.send(pb.SessionMessage(secret_request=pb.SecretRequest(req_id=req_id, id=sid)))
        msg = w.wait(self.closed, SECRET_TIMEOUT, f"fetching secret {sid!r}")
        return msg.secret_value.data if msg.secret_value.found else None

    # ---------------------------------------------------------------- outputs

    def send_output(self, index: int, kind: str, frames: Iterable[bytes]) -> None:
        """Stream exporter output ``index`` and wait until the client has written it."""
        w = self._waiter("output", index)
        self.send(pb.SessionMessage(output_begin=pb.OutputBegin(index=index, kind=kind)))
        for frame in frames:
            self.send(pb.SessionMessage(output_data=pb.OutputData(index=index, data=frame)))
        self.send(pb.SessionMessage(output_end=pb.OutputEnd(index=index)))
        ack = w.wait(self.closed, SYNC_TIMEOUT, "sending the build output")
        if ack.output_ack.error:
            raise BuildError(f"the client could not write output {index + 1}: "
                             f"{ack.output_ack.error}")

    # ---------------------------------------------------------------- ssh

    def open_ssh(self, conn: socket.socket, ssh_id: str) -> None:
        """Proxy one agent connection on the daemon to the client's agent ``ssh_id``."""
        conn_id = self.next_id()
        self._ssh.add(conn_id, conn)
        try:
            self.send(pb.SessionMessage(ssh_open=pb.SSHOpen(conn_id=conn_id, ssh_id=ssh_id)))
        except SessionClosedError:
            self._ssh.drop(conn_id, notify=False)
            return
        self._ssh.start(conn_id, conn)


class SessionRegistry:
    """Open sessions by id; Solve waits briefly for its session to arrive."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._sessions: dict[str, DaemonSession] = {}

    def add(self, session: DaemonSession) -> None:
        with self._cond:
            self._sessions[session.id] = session
            self._cond.notify_all()

    def remove(self, session: DaemonSession) -> None:
        with self._cond:
            if self._sessions.get(session.id) is session:
                del self._sessions[session.id]

    def wait(self, session_id: str, timeout: float = 30.0) -> DaemonSession:
        with self._cond:
            if not self._cond.wait_for(lambda: session_id in self._sessions, timeout):
                raise BuildError(f"session {session_id!r} did not connect",
                                 hint="the client must open the Session stream before Solve")
            return self._sessions[session_id]

    def close_all(self) -> None:
        with self._cond:
            sessions = list(self._sessions.values())
        for s in sessions:
            s.close()


@dataclass
class SSHForwarder:
    """Unix sockets on the daemon, one per ``--ssh`` id, proxied to the client's agents."""

    session: DaemonSession
    directory: Path
    ids: list[str]
    sockets: dict[str, Path] = field(default_factory=dict)
    _listeners: list[socket.socket] = field(default_factory=list)

    def start(self) -> dict[str, Path]:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for n, sid in enumerate(self.ids):
            path = self.directory / f"ssh-{n}.sock"
            lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            lsock.bind(str(path))
            path.chmod(0o666)  # the directory keeps other host users out
            lsock.listen(8)
            self._listeners.append(lsock)
            self.sockets[sid] = path
            threading.Thread(target=self._accept, args=(lsock, sid), daemon=True,
                             name=f"ssh-listen-{sid}").start()
        return self.sockets

    def _accept(self, lsock: socket.socket, sid: str) -> None:
        while True:
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            self.session.open_ssh(conn, sid)

    def close(self) -> None:
        for lsock in self._listeners:
            close_socket(lsock)
        self._listeners.clear()


class LentLayout:
    """A directory the client lends file by file (``--cache-from type=local``): listed
    once, each file fetched through the session the first time it is asked for, into
    ``root``."""

    def __init__(self, session: DaemonSession, name: str, root: Path) -> None:
        self._session = session
        self.name = name
        self.root = root
        self._files: dict[str, int] | None = None  # path -> id in the listing
        self._listed = False
        self._lock = threading.Lock()

    def _list(self) -> dict[str, int]:
        if self._files is None:
            stats = self._session.listing(self.name)
            self._listed = stats is not None
            self._files = {st.path: st.id for st in stats or [] if stat.S_ISREG(st.mode)}
        return self._files

    def is_dir(self) -> bool:
        with self._lock:
            self._list()
            return self._listed

    def file(self, rel: str) -> Path | None:
        with self._lock:
            file_id = self._list().get(rel)
            if file_id is None:
                return None
            target = self.root / rel
            if not target.is_file():
                self._session.fetch_file(self.name, file_id, target)
            return target


class RemoteBuildSession(BuildSession):
    """What the worker sees of a remote client: synced dirs, on-demand secrets and
    files."""

    def __init__(self, session: DaemonSession, local_dirs: dict[str, Path],
                 secret_ids: list[str], ssh_sockets: dict[str, Path],
                 lent_root: Path | None = None) -> None:
        super().__init__(local_dirs=local_dirs, secrets={}, ssh_sockets=ssh_sockets)
        self.debug_size: tuple[int, int] | None = None  # the client's terminal, if known
        self._session = session
        self._secret_ids = set(secret_ids)
        self._lent_root = lent_root

    def lent_files(self, name: str, path: str) -> LentFiles:
        """The client's directory, read through the session (``path`` is the client's,
        for messages only)."""
        if self._lent_root is None:
            raise BuildError(f"this build cannot read the client's directory {path}")
        return LentLayout(self._session, name, self._lent_root / name)

    def secret(self, sid: str) -> bytes | None:
        if sid not in self._secret_ids:
            return None
        return self._session.secret(sid)

    @contextlib.contextmanager
    def terminal(self) -> Iterator[tuple[int, int]]:
        """The client's terminal, relayed over the session like an ssh agent connection
        (the client knows TERMINAL_ID): one end of a socket pair is ours."""
        ours, theirs = socket.socketpair()
        with ours:
            self._session.open_ssh(theirs, TERMINAL_ID)
            yield ours.fileno(), ours.fileno()

    def terminal_size(self) -> tuple[int, int] | None:
        return self.debug_size
