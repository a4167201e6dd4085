"""The plumbing both ends of a session share: the outgoing queue and the ssh relay.

A session is one bidirectional stream of ``SessionMessage``. Each end sends through one
bounded :class:`Outbox`, so a slow peer slows the sender down instead of filling memory,
and a closed session refuses further messages (:class:`SessionClosedError`). An ssh
agent connection is relayed the same way from either end (:class:`SSHRelay`): bytes read
from the local socket leave as ``SSHData``, ``SSHData`` from the peer is written to it,
and whichever side ends first sends ``SSHClose``.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from collections.abc import Callable, Iterator

from buildkit_py.api import control_pb2 as pb
from buildkit_py.errors import BuildError

POLL = 0.5  # seconds between checks of a closed session while waiting
# The ssh id under which the step debugger's terminal travels (no --ssh id can be this):
# the daemon opens it when a shell starts, the client relays it to its own terminal.
TERMINAL_ID = "\x00terminal"
_SSH_READ = 65536


class SessionClosedError(BuildError):
    def __init__(self, what: str) -> None:
        super().__init__(f"the client session closed while {what}",
                         hint="the client went away (interrupted?); run the build again")


class Outbox:
    """One end's outgoing messages, for its side of the gRPC stream."""

    def __init__(self, maxsize: int) -> None:
        self.closed = threading.Event()
        self._q: queue.Queue[pb.SessionMessage] = queue.Queue(maxsize=maxsize)

    def send(self, msg: pb.SessionMessage) -> None:
        """Queue ``msg``, waiting while the queue is full; refused once closed."""
        while True:
            if self.closed.is_set():
                raise SessionClosedError("sending to it")
            try:
                self._q.put(msg, timeout=POLL)
                return
            except queue.Full:
                continue

    def messages(self) -> Iterator[pb.SessionMessage]:
        """What was sent, in order, until the outbox is closed and empty."""
        while True:
            try:
                yield self._q.get(timeout=POLL)
            except queue.Empty:
                if self.closed.is_set():
                    return

    def close(self) -> None:
        self.closed.set()


def close_socket(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
    conn.close()


class SSHRelay:
    """The ssh agent connections of one session end, by connection id."""

    def __init__(self, send: Callable[[pb.SessionMessage], None]) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._conns: dict[int, socket.socket] = {}

    def add(self, conn_id: int, conn: socket.socket) -> None:
        """Take ``conn`` on: from now on the peer's bytes for ``conn_id`` reach it."""
        with self._lock:
            self._conns[conn_id] = conn

    def start(self, conn_id: int, conn: socket.socket) -> None:
        """Pump what ``conn`` reads to the peer (on a thread of its own) until it ends."""
        threading.Thread(target=self._pump, args=(conn_id, conn), daemon=True,
                         name=f"ssh-{conn_id}").start()

    def _pump(self, conn_id: int, conn: socket.socket) -> None:
        try:
            while data := conn.recv(_SSH_READ):
                self._send(pb.SessionMessage(ssh_data=pb.SSHData(conn_id=conn_id, data=data)))
        except (OSError, SessionClosedError):
            pass
        self.drop(conn_id, notify=True)

    def deliver(self, msg: pb.SSHData) -> None:
        """Bytes the peer read from its end of connection ``msg.conn_id``."""
        with self._lock:
            conn = self._conns.get(msg.conn_id)
        if conn is None:
            return
        try:
            conn.sendall(msg.data)
        except OSError:
            self.drop(msg.conn_id, notify=True)

    def drop(self, conn_id: int, *, notify: bool) -> None:
        """Close connection ``conn_id``; ``notify``: tell the peer to close its end."""
        with self._lock:
            conn = self._conns.pop(conn_id, None)
        if conn is None:
            return
        close_socket(conn)
        if notify:
            with contextlib.suppress(SessionClosedError):
                self._send(pb.SessionMessage(ssh_close=pb.SSHClose(conn_id=conn_id)))

    def close_all(self) -> None:
        with self._lock:
            conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            close_socket(conn)
