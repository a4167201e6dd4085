"""When a ``bkpy`` command starts the warm command server itself, and how any start does.

A fresh process pays ~0.3 s of interpreter start-up and imports before it does anything;
a cached rebuild needs a fraction of that. So the first command on a state root that finds
no server (:mod:`launch` tried to connect) starts one in the background and runs itself in
this process as before; the commands after it are served warm. The server exits after an
idle timeout.

When it starts: its warm-up (importing the whole builder, ~1 s of CPU) must not slow the
first command down, and should be over before the next one comes. A server that can raise
its priority back afterwards (root, or an RLIMIT_NICE that allows nice 0) runs at idle
priority (SCHED_IDLE: only CPU nothing else wants) beside the first command, from its
interpreter's start to the end of its warm-up; any other is started when the first command
ends. Either way it listens before warming up, so a command that comes meanwhile waits for
it instead of paying for its own start-up. Even at idle priority the server costs the first
command of the `small` bench case ~50 ms on this 2-core machine (0.40 s against 0.34 s
with ``BKPY_NO_SERVER=1``): holding its warm-up until the command has ended removed that
but made a command right after it wait ~0.25 s for the warm-up instead of ~0.1 s in all,
so it warms up beside.

One server per socket, however many first commands start at once: a lock file next to the
socket is the arbiter. Whoever takes it (``flock``, non-blocking) spawns the server and
hands it the locked descriptor, which the server holds for its whole life; a command that
finds the lock taken knows a server is starting or running and starts none. A server
started by ``bkpy server start`` takes the same lock itself.

Not started: for ``bkpy server ...`` (those manage it), ``--help`` and ``--version``, with
``BKPY_NO_SERVER=1`` (:mod:`launch` never gets here), or with ``auto-start = false`` under
``[command-server]`` in the builder config. Anything going wrong here is never the
command's failure: the command runs as if no server existed.
"""

from __future__ import annotations

import fcntl
import os
import resource
import subprocess
import sys

from buildkit_py.config import CommandServerConfig, load_config
from buildkit_py.errors import UserError

SERVER_MODULE = "buildkit_py.cli.cmdserver"
# Leading options of the top-level group that do not say what the command is.
_GLOBAL_FLAGS = ("--debug",)
_NO_START = ("-h", "--help", "--version")


def pid_path(sock_path: str) -> str:
    return sock_path.removesuffix(".sock") + ".pid"


def log_path(sock_path: str) -> str:
    return sock_path.removesuffix(".sock") + ".log"


def lock_path(sock_path: str) -> str:
    """Held (flock) by the server for its whole life: at most one server per socket."""
    return sock_path.removesuffix(".sock") + ".lock"


def can_leave_idle_priority() -> bool:
    """Whether a process of this user that switched to SCHED_IDLE may switch back (the
    kernel asks for CAP_SYS_NICE or an RLIMIT_NICE allowing nice 0)."""
    if os.geteuid() == 0:
        return True
    soft, _ = resource.getrlimit(resource.RLIMIT_NICE)
    return soft == resource.RLIM_INFINITY or soft >= 20


def wanted_for(argv: list[str]) -> bool:
    """Whether this command line should start a server: a real command, not ``server``."""
    args = list(argv)
    while args and args[0] in _GLOBAL_FLAGS:
        args.pop(0)
    if not args or args[0].startswith("-") or args[0] == "server":
        return False
    return not any(a in _NO_START for a in args)


def server_settings() -> CommandServerConfig | None:
    """The ``[command-server]`` settings; None when the config cannot be read (the
    command itself then reports why)."""
    try:
        return load_config().command_server
    except (UserError, OSError):
        return None


def try_lock(sock_path: str) -> int | None:
    """The lock file's descriptor, locked by us; None when a server holds it."""
    os.makedirs(os.path.dirname(sock_path), mode=0o700, exist_ok=True)
    fd = os.open(lock_path(sock_path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _enter_idle_priority() -> None:
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def spawn(sock_path: str, idle_timeout: float, lock_fd: int | None = None,
          idle: bool = False) -> subprocess.Popen[bytes]:
    """Start ``python -m buildkit_py.cli.cmdserver`` detached: own session, cwd ``/``,
    output to its log, the same interpreter and (``PYTHONPATH`` first) the same package
    as this process, so that it serves exactly this install. ``idle``: at SCHED_IDLE
    from its first instruction (interpreter start included), for a server started beside
    a command; it returns to normal priority once warm. Only for a caller with no other
    thread yet (the priority is set between fork and exec)."""
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    argv = [sys.executable, "-m", SERVER_MODULE, sock_path, repr(float(idle_timeout))]
    if lock_fd is not None:
        argv += ["--lock-fd", str(lock_fd)]
    os.makedirs(os.path.dirname(sock_path), mode=0o700, exist_ok=True)
    with open(log_path(sock_path), "wb") as log:  # one log per server run
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/", env=env,
            start_new_session=True, pass_fds=() if lock_fd is None else (lock_fd,),
            preexec_fn=_enter_idle_priority if idle else None)


def start_in_background(argv: list[str], sock_path: str, *, beside: bool = False) -> None:
    """Start a server for ``sock_path`` unless one runs or starts, or it is not wanted;
    ``beside`` the command that goes on in this process (at idle priority, see above)."""
    if not wanted_for(argv):
        return
    settings = server_settings()
    if settings is None or not settings.auto_start:
        return
    try:
        fd = try_lock(sock_path)
        if fd is None:
            return
        try:
            spawn(sock_path, settings.idle_timeout, fd, idle=beside)
        finally:
            os.close(fd)  # the server holds the lock now (or nobody, if it did not start)
    except OSError as err:
        if os.environ.get("BKPY_DEBUG", "") not in ("", "0", "false"):
            print(f"bkpy: could not start the command server: {err}", file=sys.stderr)
