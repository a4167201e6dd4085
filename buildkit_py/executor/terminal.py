"""Relaying a container's terminal to this process's stdin/stdout (the step debugger).

The runtime hands over the master side of the container's pseudo-terminal; what the user
types goes to it and what it shows comes back, byte for byte. While the relay runs, a
terminal on our stdin is in raw mode (keys such as Ctrl-C reach the container's shell,
not us) and its size follows to the container's terminal on SIGWINCH (the main thread
only). The relay ends when the process ends. The same relay serves a remote client's
end: its terminal on one side, the session's byte stream to the daemon on the other.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import signal
import struct
import termios
import threading
import tty
from collections.abc import Iterator

_CHUNK = 65536


def window_size(fd: int) -> tuple[int, int]:
    """(rows, columns) of the terminal on ``fd``; (0, 0) when it is not one."""
    try:
        rows, cols, _x, _y = struct.unpack(
            "HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return 0, 0
    return rows, cols


@contextlib.contextmanager
def raw(fd: int) -> Iterator[None]:
    """``fd``'s terminal in raw mode for the block (nothing when it is not a terminal)."""
    try:
        saved = termios.tcgetattr(fd)
    except termios.error:
        yield  # not a terminal: pass the bytes through as they are
        return
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def set_size(fd: int, rows: int, cols: int) -> None:
    if rows and cols:
        with contextlib.suppress(OSError):
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def relay(peer: int, ended: int | None = None, cancel: threading.Event | None = None, *,
          inp: int = 0, out: int = 1, input_ends: bool = False) -> None:
    """Copy ``inp`` -> ``peer`` and ``peer`` -> ``out`` until ``peer`` closes, the process
    behind the pidfd ``ended`` ends (its last output is still shown), ``cancel`` is set,
    or (``input_ends``) ``inp`` closes. ``inp`` is in raw mode meanwhile when it is a
    terminal, and its size follows to ``peer`` (a pty master) on SIGWINCH."""
    previous = None
    if threading.current_thread() is threading.main_thread() and os.isatty(inp):
        previous = signal.signal(signal.SIGWINCH,
                                 lambda *_: set_size(peer, *window_size(inp)))
    inp_open = True
    try:
        with raw(inp):
            while cancel is None or not cancel.is_set():
                watched = [peer, *([ended] if ended is not None else []),
                           *([inp] if inp_open else [])]
                try:
                    ready, _, _ = select.select(watched, [], [], 0.2)
                except InterruptedError:
                    continue
                if peer in ready:
                    try:
                        data = os.read(peer, _CHUNK)
                    except OSError as err:
                        if err.errno not in (errno.EIO, errno.ECONNRESET):
                            raise  # EIO: every slave side of the pty is closed
                        data = b""
                    if not data:
                        return
                    _write_all(out, data)
                elif ended is not None and ended in ready:
                    return  # ended, and nothing more to show
                if inp_open and inp in ready:
                    data = os.read(inp, _CHUNK)
                    if data:
                        _write_all(peer, data)
                    elif input_ends:
                        return
                    else:
                        inp_open = False
    finally:
        if previous is not None:
            signal.signal(signal.SIGWINCH, previous)
