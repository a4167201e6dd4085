"""Relaying a container's terminal to this process's stdin/stdout (the step debugger).

The runtime hands over the master side of the container's pseudo-terminal; what the user
types goes to it and what it shows comes back, byte for byte. While the relay runs, a
terminal on our stdin is in raw mode (keys such as Ctrl-C reach the container's shell,
not us) and its size is copied to the container's terminal, again on every SIGWINCH when
we get them (the main thread only). The relay ends when the process ends.
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
def _raw(fd: int) -> Iterator[None]:
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


def _copy_size(src: int, dst: int) -> None:
    rows, cols = window_size(src)
    if rows and cols:
        with contextlib.suppress(OSError):
            fcntl.ioctl(dst, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def relay(master: int, pidfd: int, cancel: threading.Event | None = None) -> None:
    """Copy stdin -> ``master`` and ``master`` -> stdout until the process behind
    ``pidfd`` ends (its last output is still shown) or ``cancel`` is set."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGWINCH, lambda *_: _copy_size(0, master))
    _copy_size(0, master)
    stdin_open = True
    try:
        with _raw(0):
            while cancel is None or not cancel.is_set():
                watched = [master, pidfd] + ([0] if stdin_open else [])
                try:
                    ready, _, _ = select.select(watched, [], [], 0.2)
                except InterruptedError:
                    continue
                if master in ready:
                    try:
                        data = os.read(master, _CHUNK)
                    except OSError as err:
                        if err.errno != errno.EIO:  # EIO: every slave side is closed
                            raise
                        data = b""
                    if not data:
                        return
                    _write_all(1, data)
                elif pidfd in ready:
                    return  # ended, and nothing more to show
                if 0 in ready:
                    data = os.read(0, _CHUNK)
                    if data:
                        _write_all(master, data)
                    else:
                        stdin_open = False
    finally:
        if previous is not None:
            signal.signal(signal.SIGWINCH, previous)
