"""``exec``: one more process in a running container, as ``runc exec`` runs it.

The process joins the container's cgroups and the namespaces of its PID 1, and takes the
container's process settings from its config.json (user, capabilities, rlimits,
no_new_privs, seccomp, environment and working directory), with its own command, extra
``--env`` and ``--cwd``, and a terminal when asked (``--tty`` with ``--console-socket``,
made as for ``run``). Like ``run``, the runtime forks twice: the first child joins the
namespaces (a pid namespace only applies to children), the second becomes the process.
``--detach`` returns once it runs (its pid in ``--pid-file``); otherwise this command
waits for it and exits with its status.
"""

from __future__ import annotations

import os

from . import init, process, report, terminal
from . import spec as spec_mod
from . import state as state_mod
from . import syscalls as sc
from .errors import RuntimeFailure

# Joined in this order; the mount namespace last (it moves our root into the container).
_NAMESPACES = (("cgroup", "cgroup", sc.CLONE_NEWCGROUP), ("ipc", "ipc", sc.CLONE_NEWIPC),
               ("uts", "uts", sc.CLONE_NEWUTS), ("net", "network", sc.CLONE_NEWNET),
               ("pid", "pid", sc.CLONE_NEWPID), ("mnt", "mount", sc.CLONE_NEWNS))


class Options:
    __slots__ = ("args", "console_socket", "cwd", "detach", "env", "id", "pid_file", "root",
                 "tty")

    def __init__(self, root: str, cid: str, args: list[str], *, tty: bool = False,
                 console_socket: str = "", detach: bool = False, pid_file: str = "",
                 cwd: str = "", env: list[str] | None = None) -> None:
        self.root = root
        self.id = cid
        self.args = args
        self.tty = tty
        self.console_socket = console_socket
        self.detach = detach
        self.pid_file = pid_file
        self.cwd = cwd
        self.env = env or []


def exec_process(opts: Options) -> int:
    st = state_mod.load(opts.root, opts.id)
    if st.status() != "running":
        raise RuntimeFailure(f"exec in {opts.id}", "cannot exec in a stopped container")
    if not opts.args:
        raise RuntimeFailure("exec", "args must not be empty")
    if opts.tty and not opts.console_socket:
        raise RuntimeFailure("exec --tty", "needs --console-socket (and --detach)")
    spec = spec_mod.load(st.bundle)
    spec.args = list(opts.args)
    spec.terminal = opts.tty
    if opts.cwd:
        spec.cwd = opts.cwd
    if spec.seccomp is not None:
        from . import seccomp  # before the namespaces hide the host's files

        spec.seccomp_filter = seccomp.Profile(spec.seccomp).compile()
    process.preload(spec)
    joins = []
    for name, kind, flag in _NAMESPACES:
        theirs = f"/proc/{st.pid}/ns/{name}"
        try:
            if os.stat(theirs).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
                continue  # shared with the host (e.g. network=host)
            joins.append((os.open(theirs, os.O_RDONLY | os.O_CLOEXEC), flag, kind))
        except FileNotFoundError:
            continue
    console = terminal.connect(opts.console_socket) if opts.tty else None
    sync_r, sync_w = os.pipe()
    first = os.fork()
    if first == 0:
        _join_and_run(opts, spec, st.cgroup_dirs, joins, console, sync_w)
    os.close(sync_w)
    for fd, _flag, _kind in joins:
        os.close(fd)
    if console is not None:
        console.close()
    lines = report.LineReader(sync_r)
    try:
        pid = 0
        while True:
            msg = lines.next()
            if msg is None:
                break  # the process has exec'd (or the first child died: see below)
            if msg.startswith("pid "):
                pid = int(msg[4:])
                if opts.pid_file:
                    tmp = opts.pid_file + ".tmp"
                    with open(tmp, "w") as f:
                        f.write(str(pid))
                    os.replace(tmp, opts.pid_file)
            elif msg.startswith("error "):
                raise RuntimeFailure(msg[6:])
        if not pid:
            raise RuntimeFailure("exec: the process did not start")
    finally:
        os.close(sync_r)
    _, status = os.waitpid(first, 0)
    return 0 if opts.detach else init.exit_code(status)


def _join_and_run(opts: Options, spec: spec_mod.Spec, cgroup_dirs: list[str],
                  joins: list[tuple[int, int, str]], console: object, sync_w: int) -> None:
    """The first child: join, fork the process, report its pid, wait for it unless
    detached. Never returns."""
    try:
        for d in cgroup_dirs:
            try:
                with open(os.path.join(d, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
            except OSError as e:
                raise RuntimeFailure(f"join cgroup {d}", e) from None
        for fd, flag, kind in joins:
            try:
                sc.setns(fd, flag)
            except OSError as e:
                raise RuntimeFailure(f"join {kind} namespace", e) from None
            os.close(fd)
        second = os.fork()
        if second == 0:
            try:
                os.setsid()
                if console is not None:
                    terminal.setup(console, spec.console_size)  # type: ignore[arg-type]
                env = process.environment(spec)
                extra = {e.partition("=")[0] for e in opts.env}
                env = [e for e in env if e.partition("=")[0] not in extra] + list(opts.env)
                exe = process.lookup(spec, env)
                init.run(spec, exe, env, sync_w, 0)
            except BaseException as e:  # a forked child must never return
                report.send(sync_w, e)
                os._exit(1)
        os.write(sync_w, f"pid {second}\n".encode())
        os.close(sync_w)
        if opts.detach:
            os._exit(0)
        _, status = os.waitpid(second, 0)
        os._exit(init.exit_code(status))
    except BaseException as e:
        report.send(sync_w, e)
        os._exit(1)
