"""Passing one-line errors and progress messages over the setup pipe."""

from __future__ import annotations

import os

from .errors import RuntimeFailure


def describe(exc: BaseException) -> str:
    if isinstance(exc, RuntimeFailure):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}"
    return f"internal error: {type(exc).__name__}: {exc}"


def send(fd: int, exc: BaseException) -> None:
    """Send an error to the waiting parent; fall back to stderr if it is gone."""
    msg = describe(exc).replace("\n", " ")
    try:
        os.write(fd, f"error {msg}\n".encode())
    except OSError:
        try:
            os.write(2, f"bkpy-runc: {msg}\n".encode())
        except OSError:
            pass


class LineReader:
    """Reads newline-terminated messages from a pipe without buffering past them."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = b""

    def next(self) -> str | None:
        while b"\n" not in self.buf:
            chunk = os.read(self.fd, 4096)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace")
