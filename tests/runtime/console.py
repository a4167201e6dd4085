"""The test end of ``--console-socket``: take the pty master a runtime sends, read it out."""

from __future__ import annotations

import os
import select
import socket


def receive_master(listener: socket.socket, timeout: float = 30) -> tuple[str, int]:
    """(the name sent with it, the master's descriptor) from the runtime's connection."""
    listener.settimeout(timeout)
    conn, _ = listener.accept()
    with conn:
        name, fds, _flags, _addr = socket.recv_fds(conn, 4096, 1)
    (master,) = fds
    return name.decode(), master


def read_until_closed(master: int, timeout: float = 30) -> bytes:
    """Everything the terminal shows until its slave side closes (the process ended)."""
    shown = b""
    while True:
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            return shown
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the slave side is closed
            return shown
        if not data:
            return shown
        shown += data
