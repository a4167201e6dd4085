"""Client of the bundled runtime's fork server (``bkpy_runc.forkserver``).

One warm ``bkpy-runc`` process per executor forks each runtime command instead of a new
interpreter starting for every RUN (Python start-up and imports cost ~25 ms a step). A
forked command behaves as ``bkpy-runc ARGS...`` would: its own session, the given stdout and
stderr, stdin from /dev/null. When the server cannot be used the caller falls back to
starting the command as a process of its own.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading

from buildkit_py.executor.errors import RuntimeStartError

# argv: -c BOOT <dir holding the bkpy_runc package> <control fd>
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from bkpy_runc.forkserver import main; main(int(sys.argv[2]))"
)
_MAX_STARTS = 3  # a server that keeps dying is given up (each command then runs on its own)
_REPLY_TIMEOUT = 60.0


class ServedProcess:
    """A runtime command forked by the server; waits like ``subprocess.Popen``."""

    def __init__(self, sock: socket.socket, pid: int, args: list[str]) -> None:
        self._sock = sock
        self.pid = pid
        self.args = args
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self._receive(0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self._receive(timeout)
            if self.returncode is None:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        return self.returncode

    def _receive(self, timeout: float | None) -> None:
        self._sock.settimeout(timeout)
        try:
            msg = self._sock.recv(64)
        except (BlockingIOError, TimeoutError):
            return
        self._sock.close()
        if msg[:1] == b"X" and len(msg) == 9:
            status = int.from_bytes(msg[1:], "little", signed=True)
            self.returncode = os.waitstatus_to_exitcode(status)
        else:  # the server died: the status is lost
            self.returncode = 255


class ForkServer:
    """Starts the server on first use and restarts it if it dies; thread-safe."""

    def __init__(self, python: str, package_parent: str) -> None:
        self._python = python
        self._parent = package_parent
        self._lock = threading.Lock()
        self._ctl: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._starts = 0
        self._devnull = -1

    def start(self) -> bool:
        with self._lock:
            return self._start_locked()

    def _start_locked(self) -> bool:
        if self._ctl is not None:
            return True
        if self._starts >= _MAX_STARTS:
            return False
        self._starts += 1
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = subprocess.Popen(
                [self._python, "-S", "-I", "-c", _BOOT, self._parent, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a terminal's ^C goes to the builder, not here
                cwd="/",  # pins no directory (commands get absolute paths)
            )
        except OSError:
            mine.close()
            return False
        finally:
            theirs.close()
        if self._devnull < 0:
            self._devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self._ctl = mine
        return True

    def _drop_locked(self) -> None:
        if self._ctl is not None:
            self._ctl.close()
            self._ctl = None
        if self._proc is not None:
            proc, self._proc = self._proc, None
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            if proc.returncode is None:
                proc.kill()
                proc.wait()

    def spawn(self, argv: list[str], stdout: int, stderr: int) -> ServedProcess | None:
        """Fork ``bkpy-runc argv...``; None when the server is not available."""
        payload = b"\0".join(os.fsencode(a) for a in argv)
        for _ in range(2):  # a dead server is restarted once per command
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            with self._lock:
                if not self._start_locked():
                    mine.close()
                    theirs.close()
                    return None
                assert self._ctl is not None
                try:
                    socket.send_fds(self._ctl, [payload],
                                    [theirs.fileno(), self._devnull, stdout, stderr])
                    sent = True
                except OSError:
                    sent = False
                    self._drop_locked()
                finally:
                    theirs.close()
            if not sent:
                mine.close()
                continue
            mine.settimeout(_REPLY_TIMEOUT)
            try:
                msg = mine.recv(4096)
            except OSError:
                msg = b""
            if msg[:1] == b"P" and len(msg) == 9:
                return ServedProcess(mine, int.from_bytes(msg[1:], "little"), argv)
            mine.close()
            if msg[:1] == b"E":
                raise RuntimeStartError(f"runtime fork server: {msg[1:].decode(errors='replace')}")
            with self._lock:  # no answer: the server is gone (or never started)
                self._drop_locked()
        return None

    def close(self) -> None:
        with self._lock:
            self._drop_locked()
            self._starts = _MAX_STARTS
            if self._devnull >= 0:
                os.close(self._devnull)
                self._devnull = -1
