"""The warm command server (the client side is :mod:`launch`, the start :mod:`autostart`).

One single-threaded process imports the whole builder once, then forks a child per
command. The child adopts the caller's descriptors, cwd, environment and umask and runs
the ordinary CLI, so a command behaves exactly as in a fresh process (its own embedded
builder, its own remote connection) minus interpreter start-up and imports. Forking is
safe because the parent never starts a thread, opens a database or a gRPC channel.

Only callers with the server's own uid are served (SO_PEERCRED), since a child acts with
the server's privileges. When a module the parent imported changed on disk, the parent
tells the caller to run the command itself and exits, so an upgrade never runs old code; a
caller of another install (which the socket's name already rules out) is told the same.

It holds the socket's lock file for its whole life (at most one server per socket) and
ends after ``idle_timeout`` seconds without a command, or when its state root, once
there, is deleted. Callers queued on the socket when it ends are told to run their
command themselves rather than being cut off.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gc
import importlib
import importlib.abc
import io
import json
import os
import pkgutil
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any

import buildkit_py
from buildkit_py import deferred
from buildkit_py.cli import dataclass_code
from buildkit_py.cli.autostart import can_leave_idle_priority, lock_path, pid_path
from buildkit_py.cli.launch import (
    ACCEPT_FRAME,
    EXIT_FRAME,
    FRAME,
    RETRY_FRAME,
    SIGNAL_FRAME,
    exit_status,
    flush_stdio,
    install_key,
    socket_path,
)
from buildkit_py.cli.main import main as cli_main

_UCRED = struct.Struct("3i")
# In a forked worker: the server's log, when the command arrived, whether its caller
# has the exit status (a hang-up after that is no interrupt).
_LOG_FD: int | None = None
_STARTED = 0.0
_ANSWERED = False
# Standard-library modules a build, pull or push imports on first use.
_LAZY_STDLIB = ("hmac", "encodings.idna", "stringprep", "ctypes.util", "difflib")
# Loaded during warm-up so that the regular expressions a typical Dockerfile needs (the
# parser's lexer, word expansion, flag parsing) are compiled before any fork.
_WARM_DOCKERFILE = """\
ARG BASE=scratch
FROM $BASE AS base
ENV A=1 B="two words"
WORKDIR /src
COPY --chown=1:1 --chmod=0644 a b ./
RUN --mount=type=cache,target=/c echo "$A" ${B:-x} > out && ls
LABEL k=v
FROM base
COPY --from=base /src/out /out
USER 1000
EXPOSE 8080/tcp
CMD ["/out"]
"""
# Modules never imported into the server: running them has side effects.
_SKIP_SUFFIXES = ("__main__",)


class _DeferredImport(ImportError):
    """Raised for a library the warm-up leaves to the children that need it."""


class _Defer(importlib.abc.MetaPathFinder):
    def __init__(self, tops: tuple[str, ...]) -> None:
        self.tops = tops

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname.split(".")[0] in self.tops:
            raise _DeferredImport(fullname)


def remote_builders_configured() -> bool:
    """Whether the client config names any builder that is not the embedded one."""
    # reason: the builder store (and its config lookups) only matter to this decision
    from buildkit_py.client.builders import BuilderStore

    try:
        return any(rec.driver != "embedded" for rec in BuilderStore().list())
    except Exception:  # cannot tell: warm up everything, as for a remote builder
        return True


def warm_up() -> None:
    """Import every module of the package and load the Dockerfile parser tables.

    gRPC (~18 MB resident, a third of the server) is only for remote builders: without
    one configured, the modules that need it are left to the children that use them.
    Dataclasses come from the stored table (:mod:`dataclass_code`), which this writes
    when it compiled any new one: ~0.1 s less of a warm-up that runs beside a command."""
    dataclass_code.install()
    defer = _Defer(() if remote_builders_configured() else ("grpc",))
    sys.meta_path.insert(0, defer)
    try:
        for info in pkgutil.walk_packages(buildkit_py.__path__, "buildkit_py."):
            if info.name.endswith(_SKIP_SUFFIXES):
                continue
            try:
                importlib.import_module(info.name)
            except _DeferredImport:
                pass
            except Exception as err:  # an optional room that cannot load here: children retry
                print(f"warm-up: {info.name}: {err}", file=sys.stderr)
    finally:
        sys.meta_path.remove(defer)
    # Imported on first use by libraries, not by our modules: httpx loads its transport
    # stack (httpcore, h11, and trio/anyio when installed) when a client is created. Not
    # verifying: a child builds its own TLS context on its first HTTPS request, so loading
    # the CA bundle here would only cost the server ~7 MB.
    import httpx  # reason: only the server warms it up (~90 ms); --help imports this module

    httpx.Client(verify=False).close()
    for name in _LAZY_STDLIB:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    # The deflate engine (ISA-L's extension when installed) names every layer's cache key,
    # so even a cached build asks for it: chosen once here, not in every child.
    from buildkit_py.snapshot import deflate

    deflate.engine_name()
    # reason: the Dockerfile parser (~35 ms) stays off --help, which imports this module
    from buildkit_py.frontend.dockerfile.instructions.load import load_dockerfile
    from buildkit_py.frontend.dockerfile.parser.grammar import compile_loaded_parsers

    for text in (_WARM_DOCKERFILE, "# escape=`\n" + _WARM_DOCKERFILE):
        load_dockerfile(text)
    compile_loaded_parsers()
    dataclass_code.save()


@contextlib.contextmanager
def _idle_priority() -> Iterator[None]:
    """Run the block at SCHED_IDLE when this process may come back to SCHED_OTHER after
    it (see :mod:`autostart`): a warm-up beside the first command uses only idle CPU."""
    if not can_leave_idle_priority():
        yield
        return
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except OSError:
        yield
        return
    try:
        yield
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def _package_stamps() -> dict[str, float]:
    """Modification times of the package's source files (whether imported yet or not)."""
    stamps: dict[str, float] = {}
    for top in buildkit_py.__path__:
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for name in filenames:
                if name.endswith(".py"):
                    path = os.path.join(dirpath, name)
                    with contextlib.suppress(OSError):
                        stamps[path] = os.stat(path).st_mtime
    return stamps


def _module_stamps() -> dict[str, float]:
    stamps: dict[str, float] = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and (module.__name__.startswith("buildkit_py") or
                     module.__name__.startswith("bkpy_runc")):
            try:
                stamps[path] = os.stat(path).st_mtime
            except OSError:
                stamps[path] = -1.0
    return stamps


def _stale(stamps: dict[str, float]) -> bool:
    for path, mtime in stamps.items():
        try:
            if os.stat(path).st_mtime != mtime:
                return True
        except OSError:
            return True
    return False


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    return int(_UCRED.unpack(creds)[1])


def hold_lock(sock_path: str, lock_fd: int | None) -> int:
    """Lock the socket's lock file (or keep the lock the starting command handed over);
    exit when another server holds it."""
    if lock_fd is None:
        os.makedirs(os.path.dirname(sock_path), mode=0o700, exist_ok=True)
        lock_fd = os.open(lock_path(sock_path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.set_inheritable(lock_fd, False)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"another command server holds {lock_path(sock_path)}: exiting",
              file=sys.stderr, flush=True)
        sys.exit(3)
    return lock_fd


class CommandServer:
    def __init__(self, sock_path: str, idle_timeout: float, lock_fd: int) -> None:
        self.sock_path = sock_path
        self.idle_timeout = idle_timeout
        self.lock_fd = lock_fd
        self.children: set[int] = set()
        self.stamps: dict[str, float] = {}
        self.stopping = False
        self.root = os.environ.get("BKPY_ROOT", "")
        self.root_seen = bool(self.root) and os.path.isdir(self.root)

    def serve(self) -> None:
        # Listening before the warm-up: a command that comes meanwhile waits in the
        # socket's queue for a warm server instead of paying for its own start-up.
        signal.signal(signal.SIGTERM, self._on_term)  # a stop during warm-up cleans up too
        signal.signal(signal.SIGINT, self._on_term)
        # The code as it is now is what this server serves: a file changed during the
        # warm-up already makes it stale.
        self.stamps = _package_stamps()
        listener = self._listen()
        try:
            with _idle_priority():
                warm_up()
            for path, mtime in _module_stamps().items():  # modules from elsewhere
                self.stamps.setdefault(path, mtime)
            # Move everything imported so far out of the collector's reach: a child's
            # collections then never touch (and so never copy) the parent's pages.
            gc.collect()
            gc.freeze()
            if threading.active_count() != 1:  # forking would copy a lock some thread holds
                raise RuntimeError("a thread started during warm-up; refusing to fork")
        except BaseException:
            self._turn_away(listener)
            listener.close()
            self._cleanup()
            raise
        # A signal wakes the select below at once (PEP 475 would otherwise resume it).
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        print(f"bkpy command server {os.getpid()} listening on {self.sock_path}",
              file=sys.stderr, flush=True)
        last_busy = time.monotonic()
        try:
            while not self.stopping:
                self._reap()
                if self.children:
                    last_busy = time.monotonic()
                elif self.idle_timeout and time.monotonic() - last_busy > self.idle_timeout:
                    print("idle timeout: exiting", file=sys.stderr, flush=True)
                    break
                elif self._root_gone():
                    print(f"state root {self.root} deleted: exiting", file=sys.stderr,
                          flush=True)
                    break
                try:
                    ready, _, _ = select.select([listener.fileno(), wake_r], [], [], 1.0)
                except InterruptedError:
                    continue
                if wake_r in ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 512)
                if listener.fileno() not in ready or self.stopping:
                    continue
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                self._handle(listener, conn)
                last_busy = time.monotonic()
        finally:
            self._turn_away(listener)
            listener.close()
            self._cleanup()
            signal.set_wakeup_fd(-1)
            os.close(wake_r)
            os.close(wake_w)

    def _on_term(self, _signum: int, _frame: object) -> None:
        self.stopping = True

    def _root_gone(self) -> bool:
        if not self.root:
            return False
        if os.path.isdir(self.root):
            self.root_seen = True
            return False
        return self.root_seen

    def _turn_away(self, listener: socket.socket) -> None:
        """Unlink the socket, then tell callers already queued on it to run their command
        themselves (closing the listener would cut them off without an answer)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.sock_path)
        listener.setblocking(False)
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.sendall(FRAME.pack(RETRY_FRAME, 0))

    def _listen(self) -> socket.socket:
        os.makedirs(os.path.dirname(self.sock_path), mode=0o700, exist_ok=True)
        try:
            os.unlink(self.sock_path)
        except FileNotFoundError:
            pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            listener.bind(self.sock_path)
        finally:
            os.umask(old)
        listener.listen(64)
        with open(pid_path(self.sock_path), "w") as f:
            f.write(f"{os.getpid()}\n")
        return listener

    def _cleanup(self) -> None:
        for path in (self.sock_path, pid_path(self.sock_path)):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def _reap(self) -> None:
        for pid in list(self.children):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.children.discard(pid)

    def _handle(self, listener: socket.socket, conn: socket.socket) -> None:
        try:
            if _peer_uid(conn) != os.geteuid():
                conn.close()
                return
            if _stale(self.stamps):
                conn.sendall(FRAME.pack(RETRY_FRAME, 0))
                conn.close()
                print("code changed on disk: exiting", file=sys.stderr, flush=True)
                self.stopping = True
                return
            pid = os.fork()
        except OSError as err:
            print(f"cannot serve a command: {err}", file=sys.stderr, flush=True)
            conn.close()
            return
        if pid:
            self.children.add(pid)
            conn.close()
            return
        # the child: never returns into the loop
        status = 1
        try:
            listener.close()
            os.close(self.lock_fd)  # a long command must not keep a new server from starting
            signal.set_wakeup_fd(-1)  # the parent's pipe: our signals are ours
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            status = run_child(conn)
        finally:
            os._exit(status)


def _read_request(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    msg, fds, _flags, _addr = socket.recv_fds(conn, 8, 3)
    while len(msg) < 8:
        more = conn.recv(8 - len(msg))
        if not more:
            raise ConnectionError("caller went away")
        msg += more
    nfds, size = struct.unpack("!II", msg[:8])
    body = b""
    while len(body) < size:
        chunk = conn.recv(min(size - len(body), 1 << 20))
        if not chunk:
            raise ConnectionError("caller went away")
        body += chunk
    request: dict[str, Any] = json.loads(body)
    if len(fds) != nfds:
        raise ConnectionError("descriptors missing from the request")
    return request, fds


def _adopt_stdio(stdio: list[int], fds: list[int]) -> None:
    """Make the caller's descriptors our 0/1/2 (/dev/null for any it had closed)."""
    null = os.open(os.devnull, os.O_RDWR)
    received = dict(zip(stdio, fds, strict=True))
    for target in (0, 1, 2):
        os.dup2(received.get(target, null), target)
    for fd in (*fds, null):
        if fd > 2:
            os.close(fd)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8",
                                  line_buffering=os.isatty(1), write_through=False)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                  errors="backslashreplace", line_buffering=True)


def _watch_caller(conn: socket.socket) -> None:
    """Deliver forwarded signals; a caller that disappears interrupts the command."""
    while True:
        try:
            frame = conn.recv(FRAME.size, socket.MSG_WAITALL)
        except OSError:
            frame = b""
        if len(frame) < FRAME.size:
            if not _ANSWERED:  # gone before its answer: an interrupt
                os.kill(os.getpid(), signal.SIGINT)
            return
        kind, value = FRAME.unpack(frame)
        if kind == SIGNAL_FRAME:
            os.kill(os.getpid(), value)


def run_child(conn: socket.socket) -> int:
    global _LOG_FD, _STARTED
    _STARTED = time.monotonic()
    request, fds = _read_request(conn)
    if request.get("install") != install_key():  # another install: it runs its own code
        for fd in fds:
            os.close(fd)
        print(f"pid {os.getpid()}: a caller of another install: told to run it itself",
              file=sys.stderr, flush=True)
        conn.sendall(FRAME.pack(RETRY_FRAME, 0))
        return 0
    conn.sendall(FRAME.pack(ACCEPT_FRAME, 0))  # from here on the command counts as run
    argv = [str(a) for a in request["argv"]]
    _LOG_FD = os.dup(2)  # the server's log, before stderr becomes the caller's
    os.write(_LOG_FD, f"{time.strftime('%H:%M:%S')} pid {os.getpid()}: bkpy {' '.join(argv)}\n"
             .encode(errors="backslashreplace"))
    _adopt_stdio([int(n) for n in request["stdio"]], fds)
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in request["env"].items()})
    os.umask(int(request["umask"]))
    try:
        os.chdir(str(request["cwd"]))
    except OSError as err:
        sys.stderr.write(f"bkpy: cannot enter {request['cwd']}: {err.strerror}\n")
        return _finish(conn, 1)
    sys.argv = ["bkpy", *argv]
    threading.Thread(target=_watch_caller, args=(conn,), daemon=True).start()
    deferred.collect()  # upkeep waits until the caller has its answer
    status = 0
    try:
        cli_main(argv)
    except SystemExit as exc:
        status = exit_status(exc.code)
    except KeyboardInterrupt:
        status = 130
    except BaseException:
        traceback.print_exc()
        status = 1
    _finish(conn, status)
    _run_upkeep()
    return status


def _finish(conn: socket.socket, status: int) -> int:
    global _ANSWERED
    flush_stdio()
    if _LOG_FD is not None:
        os.write(_LOG_FD, f"{time.strftime('%H:%M:%S')} pid {os.getpid()}: exit {status} "
                          f"after {time.monotonic() - _STARTED:.3f}s\n".encode())
    _ANSWERED = True  # before the caller can hang up on the answer
    try:
        conn.sendall(FRAME.pack(EXIT_FRAME, status))
    except OSError as err:
        if err.errno not in (errno.EPIPE, errno.ECONNRESET):
            raise
    return status


def _run_upkeep() -> None:
    """After the answer: give the caller's terminal and pipes back (whoever reads them
    waits for their end, not for this process), then run the upkeep the command left
    for later (:mod:`buildkit_py.deferred`)."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    started = time.monotonic()
    if deferred.run_collected() and _LOG_FD is not None:
        os.write(_LOG_FD, f"{time.strftime('%H:%M:%S')} pid {os.getpid()}: upkeep after the "
                          f"answer {time.monotonic() - started:.3f}s\n".encode())


def main(argv: list[str] | None = None) -> None:
    """``python -m buildkit_py.cli.cmdserver SOCKET IDLE_SECONDS [--lock-fd N]``
    (started by :func:`buildkit_py.cli.autostart.spawn`)."""
    args = sys.argv[1:] if argv is None else argv
    sock_path, idle = args[0], float(args[1])
    lock_fd = int(args[3]) if args[2:3] == ["--lock-fd"] else None
    if socket_path() != sock_path:  # this interpreter would serve another install's callers
        print(f"this install's socket is {socket_path()}, not {sock_path}: exiting",
              file=sys.stderr, flush=True)
        sys.exit(3)
    CommandServer(sock_path, idle, hold_lock(sock_path, lock_fd)).serve()


if __name__ == "__main__":
    main()
