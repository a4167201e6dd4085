"""Container lifecycle: create (and run), start, kill, delete.

Processes of one container:
  runtime (P0) --fork--> init (PID 1): cgroups, namespaces, mounts, pivot_root; reports
                         "created", waits for start, becomes the process owner and
                         posix_spawn()s the user process, relaying signals and reaping.
P0 enters the new pid namespace itself so its child is PID 1. When runtime-side hooks
exist (they must be forked from P0 in the host's namespaces), a short-lived setup child
sits in between instead and P0, as child subreaper, adopts the init.
"""

from __future__ import annotations

import _signal
import os
import time

from . import cgroups, hooks, init, mounts, namespaces, process, report, signals, terminal
from . import spec as spec_mod
from . import state as state_mod
from . import syscalls as sc
from .errors import RuntimeFailure
from .spec import Spec
from .state import State

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~15 ms of start-up; annotations are lazy
    from typing import NoReturn


_RUNTIME_HOOKS = ("prestart", "createRuntime", "poststart", "poststop")


class Options:
    __slots__ = ("bundle", "console_socket", "detach", "id", "no_pivot", "pid_file",
                 "preserve_fds", "root", "run")

    def __init__(self, root: str, cid: str, bundle: str, *, run: bool, detach: bool = False,
                 pid_file: str = "", no_pivot: bool = False, preserve_fds: int = 0,
                 console_socket: str = "") -> None:
        self.root = root
        self.id = cid
        self.bundle = bundle
        self.run = run
        self.detach = detach
        self.pid_file = pid_file
        self.no_pivot = no_pivot
        self.preserve_fds = preserve_fds
        self.console_socket = console_socket


def create(opts: Options) -> int:
    """``create`` (opts.run False) or ``run``; returns the exit code for the CLI."""
    state_mod.check_id(opts.id)
    spec = spec_mod.load(opts.bundle)
    # runc's rules: the terminal's master goes to whoever listens on --console-socket, for
    # a container that is created or runs detached (runc relays a foreground one to its own
    # terminal, which bkpy-runc does not do)
    detached = opts.detach or not opts.run
    if opts.console_socket and not (detached and spec.terminal):
        raise RuntimeFailure("--console-socket",
                             "cannot use console socket if runc will not detach or allocate tty")
    if spec.terminal and not opts.console_socket:
        raise RuntimeFailure("config.json", "process.terminal: true needs --console-socket "
                             "(and --detach for run)")
    if spec.seccomp is not None:
        from . import seccomp  # only bundles with a profile load it (before the init forks)

        spec.seccomp_profile = seccomp.Profile(spec.seccomp)  # a bad profile fails here
    st = State(opts.root, opts.id)
    st.bundle = spec.bundle
    st.rootfs = spec.rootfs
    st.annotations = spec.annotations
    st.oci_version = spec.oci_version or st.oci_version
    st.hooks = {k: spec.hooks.get(k) or [] for k in ("poststart", "poststop")}
    st.created = state_mod.timestamp()
    st.create_dir()
    try:
        hs = cgroups.setup(spec.cgroups_path, opts.id, spec.resources)
        st.cgroup_dirs = [h.host_dir() for h in hs if h.target]
        st.save()
        return _create(opts, spec, st, hs)
    except BaseException:
        _stop_init(st)
        cgroups.remove(st.cgroup_dirs)
        state_mod.remove_dir(st)
        raise


def _create(opts: Options, spec: Spec, st: State, hs: list[cgroups.Hierarchy]) -> int:
    fifo = ""
    if not opts.run:
        fifo = st.fifo
        os.mkfifo(fifo, 0o622)
    sync_r, sync_w = os.pipe()
    go_r, go_w = os.pipe()
    foreground = opts.run and not opts.detach
    # Without runtime-side hooks this process forks nothing after the init, so it can
    # enter the new pid namespace itself and fork the init directly (one process less).
    direct = not any(spec.hooks.get(k) for k in _RUNTIME_HOOKS)
    if foreground:
        _signal.pthread_sigmask(_signal.SIG_BLOCK, signals.RELAYED)
        if not direct:
            sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    fds = (sync_r, sync_w, go_r, go_w)
    if direct:
        namespaces.enter_only(spec, "pid")
        setup_pid = os.fork()
        if setup_pid == 0:
            _init_child(opts, spec, st, hs, fds, fifo, direct=True)
    else:
        setup_pid = os.fork()
        if setup_pid == 0:
            _setup_child(opts, spec, st, hs, fds, fifo)
    os.close(sync_w)
    os.close(go_r)
    lines = report.LineReader(sync_r)
    init_pid = 0
    if direct:
        init_pid, setup_pid = setup_pid, 0
    try:
        if spec.seccomp_profile is not None:
            from . import seccomp

            # Compiled while the init builds the rootfs (it reads it before "created").
            try:
                seccomp.send(go_w, spec.seccomp_profile.compile())
            except BrokenPipeError:
                pass  # the init failed already; its error follows on the sync pipe
        while True:
            msg = lines.next()
            if msg is None:
                raise RuntimeFailure("container init exited during setup")
            if msg.startswith("pid "):
                init_pid = int(msg[4:])
                os.waitpid(setup_pid, 0)
                setup_pid = 0
            elif msg == "hook":
                st.pid = init_pid
                try:
                    hooks.run("prestart", spec.hooks.get("prestart") or [],
                              st.hook_state("creating"))
                    hooks.run("createRuntime", spec.hooks.get("createRuntime") or [],
                              st.hook_state("creating"))
                except BaseException:
                    try:
                        os.write(go_w, b"x")
                    except OSError:
                        pass
                    raise
                finally:
                    st.pid = 0
                os.write(go_w, b"g")
            elif msg == "created":
                break
            elif msg.startswith("error "):
                raise RuntimeFailure(msg[6:])
        info = state_mod.proc_start_time(init_pid)
        if info is None:
            raise RuntimeFailure("container init exited during setup")
        st.pid, st.start_time = init_pid, info[1]
        if not opts.run:
            st.save()  # `run` saves once, after start
        if opts.pid_file:
            _write_pid_file(opts.pid_file, init_pid)
        if not opts.run:
            return 0
        try:
            os.write(go_w, b"g")
        except BrokenPipeError:
            _raise_child_error(lines)
            raise RuntimeFailure("container init exited before start") from None
        msg = lines.next()  # EOF once the user process has exec'd
        if msg is not None and msg.startswith("error "):
            raise RuntimeFailure(msg[6:])
        st.started = True
        st.save()
        _warn_hooks("poststart", st)
    except BaseException:
        if setup_pid:
            os.kill(setup_pid, 9)
            os.waitpid(setup_pid, 0)
        if init_pid and not st.pid:
            st.pid = init_pid
            st.start_time = (state_mod.proc_start_time(init_pid) or ("", 0))[1]
        raise
    finally:
        os.close(sync_r)
        os.close(go_w)
    if opts.detach:
        return 0
    return _wait_foreground(st)


_NON_FATAL = frozenset((_signal.SIGCONT, _signal.SIGURG, _signal.SIGWINCH, _signal.SIGTSTP,
                        _signal.SIGTTIN, _signal.SIGTTOU))


def _die(signum: int, _frame: object) -> None:
    os._exit(128 + signum)


def _raise_child_error(lines: report.LineReader) -> None:
    """If the child has reported an error, raise it: it names the step that failed."""
    msg = lines.next()
    if msg is not None and msg.startswith("error "):
        raise RuntimeFailure(msg[6:]) from None


def _wait_foreground(st: State) -> int:
    pid = st.pid

    def relay(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except OSError:
            pass

    for s in signals.RELAYED:
        _signal.signal(s, relay)
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, signals.RELAYED)
    _, status = os.waitpid(pid, 0)
    for s in signals.RELAYED:
        _signal.signal(s, _signal.SIG_DFL)
    destroy(st)
    return init.exit_code(status)


def _write_pid_file(path: str, pid: int) -> None:
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), "." + os.path.basename(path))
    with open(tmp, "w", encoding="ascii") as f:
        f.write(str(pid))
    os.replace(tmp, path)


def _prelude(spec: Spec, hs: list[cgroups.Hierarchy]) -> None:
    """First steps of a fresh child: oom score, cgroups, then every namespace but pid."""
    if spec.oom_score_adj is not None:
        try:
            with open("/proc/self/oom_score_adj", "w", encoding="ascii") as f:
                f.write(str(spec.oom_score_adj))
        except OSError as e:
            raise RuntimeFailure("set oom_score_adj", e) from None
    cgroups.join_self(hs)
    namespaces.enter(spec, skip=("pid",))  # the cgroup namespace roots at the joined cgroup


def _setup_child(opts: Options, spec: Spec, st: State, hs: list[cgroups.Hierarchy],
                 fds: tuple[int, int, int, int], fifo: str) -> NoReturn:
    """Setup child (runtime hooks present): prelude, fork the init into the pid ns, exit."""
    sync_r, sync_w, _go_r, go_w = fds
    try:
        os.close(sync_r)
        os.close(go_w)
        _prelude(spec, hs)
        namespaces.enter_only(spec, "pid")
        pid = os.fork()
        if pid == 0:
            _init_child(opts, spec, st, hs, fds, fifo, direct=False)
        os.write(sync_w, f"pid {pid}\n".encode())
        os._exit(0)
    except BaseException as e:  # a forked child must never return
        report.send(sync_w, e)
        os._exit(1)


def _init_child(opts: Options, spec: Spec, st: State, hs: list[cgroups.Hierarchy],
                fds: tuple[int, int, int, int], fifo: str, direct: bool) -> NoReturn:
    """The init: build the rootfs, switch into it, report "created", wait for start, run."""
    sync_r, sync_w, go_r, go_w = fds
    try:
        if direct:  # otherwise the setup child has done the prelude
            os.close(sync_r)
            os.close(go_w)
            _prelude(spec, hs)
        # As PID 1 we would ignore signals without a handler: until the user process
        # runs, a signal that normally terminates ends the init (like runc's init).
        for signum in signals.catchable():
            if signum not in _NON_FATAL:
                _signal.signal(signum, _die)
        _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
        os.setsid()
        os.umask(0)
        if any(spec.hooks.get(k) for k in ("createContainer", "startContainer")):
            hooks.preload()
        process.preload(spec)
        st.pid = int(os.readlink("/proc/self"))  # our pid as the host sees it, for hooks
        fs = mounts.RootfsSetup(spec, hs)
        fs.prepare()
        if spec.seccomp_profile is not None:
            from . import seccomp

            spec.seccomp_filter = seccomp.receive(go_r)
            if spec.seccomp_filter is None:
                os._exit(1)  # the runtime failed to compile it and reports why
        if spec.hooks.get("prestart") or spec.hooks.get("createRuntime"):
            os.write(sync_w, b"hook\n")
            if os.read(go_r, 1) != b"g":
                os._exit(1)
        hooks.run("createContainer", spec.hooks.get("createContainer") or [],
                  st.hook_state("created"))
        fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC) if fifo else -1
        console = terminal.connect(opts.console_socket) if spec.terminal else None
        fs.switch_root(opts.no_pivot)
        namespaces.set_names(spec)
        fs.finalize()
        if console is not None:  # from the container's own devpts, as runc
            terminal.setup(console, spec.console_size)
        env = process.environment(spec)
        process.ensure_cwd(spec)
        exe = process.lookup(spec, env)
        os.write(sync_w, b"created\n")
        if fifo_fd >= 0:
            # Blocks until `start` opens the fifo for reading.
            fd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
            os.write(fd, b"0")
            os.close(fd)
            os.close(fifo_fd)
        elif os.read(go_r, 1) != b"g":
            os._exit(1)
        os.close(go_r)
        hooks.run("startContainer", spec.hooks.get("startContainer") or [],
                  st.hook_state("running"))
        init.run(spec, exe, env, sync_w, opts.preserve_fds)
    except BaseException as e:  # a forked child must never return
        report.send(sync_w, e)
        os._exit(1)


def start(root: str, cid: str) -> None:
    st = state_mod.load(root, cid)
    status = st.status()
    if status != "created":
        raise RuntimeFailure(f"cannot start container {cid}: it is {status}")
    try:
        fd = os.open(st.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise RuntimeFailure(f"open exec fifo of {cid}", e) from None
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if os.read(fd, 1):
                    break
            except BlockingIOError:
                pass
            if st.status() != "created" or time.monotonic() > deadline:
                raise RuntimeFailure(f"start container {cid}", "container init exited")
            time.sleep(0.0005)
    finally:
        os.close(fd)
    os.unlink(st.fifo)
    st.started = True
    st.save()
    _warn_hooks("poststart", st)


def kill(root: str, cid: str, signum: int) -> None:
    st = state_mod.load(root, cid)
    status = st.status()
    if status not in ("created", "running"):
        raise RuntimeFailure(f"cannot kill container {cid}: it is {status}")
    try:
        os.kill(st.pid, signum)
    except OSError as e:
        raise RuntimeFailure(f"kill container {cid}", e) from None


def delete(root: str, cid: str, force: bool) -> None:
    st = state_mod.load(root, cid)
    status = st.status()
    if status in ("running", "creating") and not force:
        raise RuntimeFailure(f"cannot delete container {cid} that is not stopped: {status}")
    _stop_init(st)
    destroy(st)


def _stop_init(st: State) -> None:
    """SIGKILL the init if it is still alive and wait until it is gone."""
    if not st.pid or st.status() == "stopped":
        return
    try:
        os.kill(st.pid, 9)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while st.status() != "stopped" and time.monotonic() < deadline:
        try:
            if os.waitpid(st.pid, os.WNOHANG)[0]:
                break
        except ChildProcessError:
            pass
        time.sleep(0.001)


def destroy(st: State) -> None:
    """Post-stop cleanup: poststop hooks (failures only warn), cgroups, state dir."""
    _warn_hooks("poststop", st)
    cgroups.remove(st.cgroup_dirs)
    state_mod.remove_dir(st)


def _warn_hooks(kind: str, st: State) -> None:
    """poststart/poststop failures only warn: the lifecycle goes on (runtime-spec)."""
    try:
        hooks.run(kind, st.hooks.get(kind) or [],
                  st.hook_state("stopped" if kind == "poststop" else "running"))
    except RuntimeFailure as e:
        os.write(2, f"bkpy-runc: warning: {e}\n".encode())
