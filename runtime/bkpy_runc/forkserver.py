"""A fork server: runtime commands forked from one warm process instead of a fresh interpreter.

Starting Python and importing the runtime costs ~25 ms, more than the rest of a short
``run``. A builder that runs many containers starts this server once; each command is then a
``fork()`` of it that runs the CLI exactly as ``bkpy-runc ARGS...`` would, in a new session.

Protocol over a ``SOCK_SEQPACKET`` control socket (one message per request):
  request: the argv (NUL-separated) with four fds: a reply socket, stdin, stdout, stderr.
  replies on the request's reply socket: ``P`` + pid (8 bytes, little endian) once forked,
  then ``X`` + the raw wait status (8 bytes) when that process has exited; ``E`` + a message
  if the fork failed. The server exits when the control socket's peer goes away.

Compiled seccomp filters are remembered: a command that compiled one sends it back over a
datagram socket, and later forks inherit it (the profile text is the key), so a builder
compiles Docker's default profile once rather than on every RUN.
"""

from __future__ import annotations

import os
import selectors
import socket
import sys

# Everything a command may import, loaded once here and inherited by every fork.
from . import (  # noqa: F401
    caps,
    cgroups,
    cli,
    container,
    devices,
    hooks,
    init,
    mounts,
    namespaces,
    process,
    report,
    seccomp,
    signals,
    state,
    syscalls,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~15 ms of start-up; annotations are lazy
    from typing import NoReturn

_MAX_REQUEST = 1 << 16
_MAX_LEARNED = 16  # distinct seccomp profiles remembered
_LEARN_MAX = 1 << 20


def _preload() -> None:
    import gc
    import resource  # noqa: F401  (what process.preload and seccomp.compile import lazily)

    for name in ("x86_64", "i386", "x32", "aarch64"):
        seccomp._table(name)
    # Forks share this process's pages until they write to them. A collection in a fork
    # would write to every object's header (copying most pages) for nothing: commands are
    # short-lived and the server itself makes little garbage.
    gc.disable()
    gc.freeze()


def _child(argv: list[str], stdio: list[int], learn_w: int) -> NoReturn:
    """The forked command: its own session, the caller's stdio, then the CLI."""
    code = 1
    try:
        os.setsid()
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
        os.set_inheritable(learn_w, False)
        os.set_blocking(learn_w, False)  # a full socket must never hold up a container
        os.closerange(3, learn_w)
        os.closerange(learn_w + 1, 1 << 20)

        def learned(key: str, filt: seccomp.Filter) -> None:
            head = len(key.encode()).to_bytes(4, "little")
            try:
                os.write(learn_w, head + key.encode() + seccomp.pack(filt))
            except OSError:
                pass  # a full or closed socket only costs a later compile

        seccomp.learned = learned
        code = cli.main(argv)
    except BaseException:  # a forked child must never return into the server loop
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _learn(data: bytes) -> None:
    size = int.from_bytes(data[:4], "little")
    key = data[4:4 + size].decode(errors="replace")
    filt = seccomp.unpack(data[4 + size:])
    if filt is not None and len(seccomp.memo) < _MAX_LEARNED:
        seccomp.memo[key] = filt


def _send(sock: socket.socket, kind: bytes, value: int) -> None:
    try:
        sock.send(kind + value.to_bytes(8, "little", signed=True))
    except OSError:
        pass  # the caller gave up on this command (cancelled); nothing to tell


def serve(ctl_fd: int) -> None:
    """Serve requests on ``ctl_fd`` until its peer closes."""
    _preload()
    ctl = socket.socket(fileno=ctl_fd)
    learn_r, learn_w = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    learn_r.setblocking(False)
    learn_w.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _LEARN_MAX)
    learn_r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _LEARN_MAX)
    sel = selectors.DefaultSelector()
    sel.register(ctl, selectors.EVENT_READ, None)
    sel.register(learn_r, selectors.EVENT_READ, "learn")
    while True:
        for key, _ in sel.select():
            if key.data is None:
                if not _accept(ctl, sel, learn_w.fileno()):
                    return
            elif key.data == "learn":
                while True:
                    try:
                        _learn(learn_r.recv(_LEARN_MAX))
                    except BlockingIOError:
                        break
            else:
                pidfd, pid, reply = key.data
                sel.unregister(pidfd)
                os.close(pidfd)
                _, status = os.waitpid(pid, 0)
                _send(reply, b"X", status)
                reply.close()


def _accept(ctl: socket.socket, sel: selectors.BaseSelector, learn_w: int) -> bool:
    """Handle one request; False once the control socket is closed."""
    msg, fds, _flags, _addr = socket.recv_fds(ctl, _MAX_REQUEST, 4)
    if not msg and not fds:
        return False
    if len(fds) != 4:
        for fd in fds:
            os.close(fd)
        return True
    reply = socket.socket(fileno=fds[0])
    stdio = fds[1:]
    argv = [os.fsdecode(a) for a in msg.split(b"\0")] if msg else []
    try:
        pid = os.fork()
    except OSError as e:
        for fd in stdio:
            os.close(fd)
        try:
            reply.send(b"E" + str(e).encode())
        except OSError:
            pass
        reply.close()
        return True
    if pid == 0:
        _child(argv, stdio, learn_w)
    for fd in stdio:
        os.close(fd)
    _send(reply, b"P", pid)
    pidfd = os.pidfd_open(pid)
    sel.register(pidfd, selectors.EVENT_READ, (pidfd, pid, reply))
    return True


def main(ctl_fd: int) -> NoReturn:
    """Entry point: ``python -S -I -c BOOT`` (see buildkit_py.executor.forkserver)."""
    try:
        os.close(os.pidfd_open(os.getpid()))  # children are watched with pidfds (Linux 5.3)
    except (AttributeError, OSError):
        os._exit(3)  # the caller runs each command as its own process instead
    serve(ctl_fd)
    os._exit(0)
