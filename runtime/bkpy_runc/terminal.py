"""A terminal for the container process (``process.terminal: true``), as runc makes one.

The init connects to ``--console-socket`` while the host's paths are still visible, then,
inside the new root, opens a pseudo-terminal from the container's own devpts instance
(``/dev/ptmx`` -> ``pts/ptmx``), makes its slave side the controlling terminal and stdio
of the process, and sends the master side over the socket (SCM_RIGHTS, with the master's
path ``/dev/ptmx`` as the message, as runc sends it). Whoever listens there relays the
user's terminal.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import termios

from .errors import RuntimeFailure


def connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise RuntimeFailure(f"connect to console socket {path}", e) from None
    return sock


def setup(sock: socket.socket, size: tuple[int, int]) -> None:
    """Open the pty, hand its master to ``sock``, make the slave our stdio and
    controlling terminal (the init is a session leader already)."""
    try:
        master, slave = os.openpty()
    except OSError as e:
        raise RuntimeFailure("open a pseudo-terminal (/dev/ptmx)", e) from None
    try:
        rows, cols = size
        if rows and cols:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        socket.send_fds(sock, [b"/dev/ptmx"], [master])
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
    except OSError as e:
        raise RuntimeFailure("set up the terminal", e) from None
    finally:
        os.close(master)
        if slave > 2:
            os.close(slave)
        sock.close()
