"""A private unix-socket forwarder for ``RUN --mount=type=ssh``.

The agent socket the caller hands us belongs to the client session; the container needs its
own socket with the mount's uid/gid/mode (default 0600, root). We listen on a fresh socket
with those permissions and relay each connection to the caller's socket, all in one thread.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import threading
from pathlib import Path

_CHUNK = 65536


class SocketForwarder:
    def __init__(self, listen_path: Path, upstream: Path, *, uid: int, gid: int, mode: int) -> None:
        self.path = listen_path
        self._upstream = upstream
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(listen_path))
        os.chown(listen_path, uid, gid)
        os.chmod(listen_path, mode)
        self._server.listen(16)
        self._server.setblocking(False)
        self._wake_r, self._wake_w = os.pipe()
        self._sel = selectors.DefaultSelector()
        self._peers: dict[socket.socket, socket.socket] = {}
        self._thread = threading.Thread(target=self._loop, name="ssh-forward", daemon=True)
        self._thread.start()

    def close(self) -> None:
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        os.close(self._wake_r)
        os.close(self._wake_w)
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    def _loop(self) -> None:
        sel = self._sel
        sel.register(self._server, selectors.EVENT_READ, "accept")
        sel.register(self._wake_r, selectors.EVENT_READ, "stop")
        try:
            while True:
                for key, _ in sel.select():
                    if key.data == "stop":
                        return
                    if key.data == "accept":
                        self._accept()
                    else:
                        assert isinstance(key.fileobj, socket.socket)
                        self._relay(key.fileobj)
        finally:
            for sock in list(self._peers):
                self._drop(sock)
            sel.close()
            self._server.close()

    def _accept(self) -> None:
        try:
            client, _ = self._server.accept()
        except OSError:
            return
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(str(self._upstream))
        except OSError:
            client.close()
            upstream.close()
            return
        # Blocking sends keep the relay simple; agent messages are small.
        for sock, other in ((client, upstream), (upstream, client)):
            self._peers[sock] = other
            self._sel.register(sock, selectors.EVENT_READ, "relay")

    def _relay(self, sock: socket.socket) -> None:
        other = self._peers.get(sock)
        if other is None:
            return
        try:
            data = sock.recv(_CHUNK)
            if data:
                other.sendall(data)
                return
        except OSError:
            pass
        self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        other = self._peers.pop(sock, None)
        for s in (sock, other):
            if s is None:
                continue
            self._peers.pop(s, None)
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(s)
            s.close()
