"""The ``bkpy`` console script: hand the command to a warm command server, else run it here.

Python start-up plus importing the builder costs ~0.3 s, several times what a cached
rebuild needs. A command server (:mod:`cmdserver`) is a process with everything imported;
this module (standard library only, so it loads in a few milliseconds) connects to it,
passes argv, cwd, environment, umask and its stdin/stdout/stderr descriptors (SCM_RIGHTS),
and the server forks a child that runs the command exactly as this process would have,
writing straight to the caller's terminal or pipes. Signals received here are forwarded;
the exit status comes back. When no server answers, the command runs in this process, and
:mod:`autostart` starts a server in the background (beside it or after it) for the
commands after it. With ``BKPY_NO_SERVER=1`` neither happens.

There is one server per state root *and install*: the socket's name hashes ``BKPY_ROOT``
with the interpreter, its environment (``sys.prefix``), the package's path and version,
so another install never reaches this one's server (and the request names its install,
which the server checks again).

Where a C compiler was there at install, ``bkpy`` is a compiled client
(``launcher/bkpy.c``) that speaks this protocol without starting an interpreter, and
this module is ``bkpy-py``, which it runs whenever it cannot hand the command over
itself. Only Python knows the install key, so when the compiled client ran us
(``BKPY_LAUNCHER`` names it) we write the key to a file it reads next time.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import struct
import sys
from types import FrameType

from buildkit_py import __version__

# Frames: client -> server one request (length-prefixed JSON, stdio fds attached), then
# signal notices; server -> client: "A" when the command starts, then "X" + exit status;
# or "R" (stale server: run locally). A connection that ends before "A" ran nothing (a
# server that died while warming up), so the caller runs the command itself.
SIGNAL_FRAME = b"S"
EXIT_FRAME = b"X"
RETRY_FRAME = b"R"
ACCEPT_FRAME = b"A"
FRAME = struct.Struct("!ci")
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
NO_SERVER_ENV = "BKPY_NO_SERVER"
LAUNCHER_ENV = "BKPY_LAUNCHER"
_LAUNCHER_MAGIC = b"bkpy-launcher 1\n"
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def server_dir() -> str:
    """Where sockets and pid files live: short, private to the user, never on a share."""
    if os.geteuid() == 0:
        return "/run/bkpy"
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/bkpy-{os.geteuid()}"
    return os.path.join(runtime, "bkpy")


def install_key() -> str:
    """What a server shares with the callers it serves: interpreter, environment
    (virtualenv), package path and version."""
    return "\0".join((sys.version, sys.prefix, _PACKAGE_DIR, __version__))


def socket_path() -> str:
    """The server socket for this environment's state root and this install.

    A hash keeps the path under the 108-byte sun_path limit whatever the root is.
    """
    key = f"{os.environ.get('BKPY_ROOT', '')}\0{install_key()}"
    return os.path.join(server_dir(), f"cmd-{hashlib.sha256(key.encode()).hexdigest()[:16]}.sock")


def launcher_key_path(launcher: str) -> str:
    """The compiled client's key file: named after the client's own path."""
    digest = hashlib.sha256(launcher.encode(errors="surrogateescape")).hexdigest()[:16]
    return os.path.join(server_dir(), f"launcher-{digest}.key")


def record_launcher(launcher: str) -> None:
    """Write the install key for the compiled client at ``launcher``, with what makes it
    stale: the client itself replaced, the interpreter or the package changed."""
    try:
        me = os.stat(launcher)
        lines = [_LAUNCHER_MAGIC,
                 f"self {me.st_dev} {me.st_ino} {me.st_mtime_ns} {me.st_size}\n".encode()]
        for stamped in (os.path.realpath(sys.executable),
                        os.path.join(_PACKAGE_DIR, "__init__.py")):
            lines.append(f"stamp {os.stat(stamped).st_mtime_ns} {stamped}\n"
                         .encode(errors="surrogateescape"))
        lines += [b"key\n", install_key().encode(errors="surrogateescape")]
        data = b"".join(lines)
        path = launcher_key_path(launcher)
        try:
            with open(path, "rb") as f:
                if f.read() == data:
                    return  # every command the client cannot hand over comes here
        except OSError:
            pass
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        pass  # the compiled client keeps handing its commands to us: slower, not wrong


def request_bytes(argv: list[str], stdio: list[int]) -> bytes:
    """The request after the descriptor count: length-prefixed JSON."""
    body = json.dumps({
        "argv": argv,
        "stdio": stdio,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "umask": _umask(),
        "install": install_key(),
    }).encode()
    return struct.pack("!I", len(body)) + body


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def _open_fds() -> list[int]:
    fds = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            continue
        fds.append(fd)
    return fds


def _connect(path: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    return sock


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def run_via_server(sock: socket.socket, argv: list[str]) -> int | None:
    """Run ``argv`` in the server; the exit status, or None when it asks us to run locally."""
    try:
        os.getcwd()
    except OSError:  # a deleted cwd: the local run reports it
        return None
    fds = _open_fds()
    forwarded: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        forwarded.append(signum)
        try:
            sock.sendall(FRAME.pack(SIGNAL_FRAME, signum))
        except OSError:
            pass

    payload = request_bytes(argv, fds)
    header = struct.pack("!I", len(fds))
    try:
        socket.send_fds(sock, [header + payload], fds)
    except OSError:
        return None
    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    accepted = False
    try:
        while True:
            try:
                frame = _recv_exact(sock, FRAME.size)
            except InterruptedError:
                continue
            except OSError:
                frame = b""
            if len(frame) < FRAME.size:
                break
            kind, value = FRAME.unpack(frame)
            if kind == ACCEPT_FRAME:
                accepted = True
            elif kind == RETRY_FRAME:
                return None
            elif kind == EXIT_FRAME:
                return value
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not accepted and not forwarded:
        return None  # the server went away before starting the command: run it here
    if forwarded:  # the command died of the signal we passed on, as it would have here
        return 128 + forwarded[-1]
    sys.stderr.write("bkpy: the command server's worker ended without an exit status "
                     "(see `bkpy server status`); re-run with BKPY_NO_SERVER=1 to run "
                     "without it\n")
    return 1


def exit_status(code: object) -> int:
    """The process exit status of ``SystemExit(code)``, as the interpreter computes it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    sys.stderr.write(f"{code}\n")
    return 1


def flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def _run_here() -> int:
    """Run the command in this process; its exit status."""
    # reason: standard library only; serves dataclasses before anything defines one
    from buildkit_py.cli import dataclass_code

    dataclass_code.install()  # a no-op when main() did it
    # reason: this module stays standard-library only; click and the CLI load only here
    from buildkit_py.cli.main import main as cli_main

    try:
        cli_main()
    except SystemExit as exc:
        return exit_status(exc.code)
    finally:
        dataclass_code.save()
    return 0


def _exit_now(status: int) -> None:
    """End the process the way a served command's worker ends: output flushed, then
    ``os._exit``. The interpreter's own teardown (clearing ~600 modules, collecting every
    object the builder made) adds 50-100 ms to a command that has already finished; every
    command closes what it opened itself, as it must when a server runs it."""
    flush_stdio()
    os._exit(status)


def main() -> None:
    launcher = os.environ.pop(LAUNCHER_ENV, None)
    if launcher:
        record_launcher(launcher)
    if os.environ.get(NO_SERVER_ENV, "") in ("", "0"):
        path = socket_path()
        sock = _connect(path)
        if sock is not None:
            with sock:
                status = run_via_server(sock, sys.argv[1:])
            if status is not None:
                _exit_now(status)
        # reason: standard library only until no server answered; the CLI loads next anyway
        from buildkit_py.cli import dataclass_code

        dataclass_code.install()  # before autostart loads the config's dataclasses
        # reason: as above
        from buildkit_py.cli import autostart

        # Beside this command when the server can warm up at idle priority, else after it
        # (see autostart): its warm-up must not take CPU from this command.
        beside = autostart.can_leave_idle_priority()
        if beside:
            autostart.start_in_background(sys.argv[1:], path, beside=True)
        try:
            status = _run_here()
        finally:
            if not beside:
                autostart.start_in_background(sys.argv[1:], path)
        _exit_now(status)
    _exit_now(_run_here())


if __name__ == "__main__":
    main()
