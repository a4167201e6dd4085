"""Run one ExecOp: write an OCI bundle, call the runtime's ``run``, stream output, clean up.

One container per exec (as BuildKit does): a unique id, ``<runtime> --root <state>/runtime
run --bundle <bundle> <id>`` in its own process group, output pumped from pipes as it comes.
Cancellation sends ``kill <id> KILL``; the container is always deleted and the bundle, the
private secret/socket directory and the mount stubs are always cleaned up.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import selectors
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from buildkit_py import rootpath
from buildkit_py.errors import BuildError, UsageError
from buildkit_py.executor.binfmt import ensure_platform
from buildkit_py.executor.cache_mounts import CacheMountManager
from buildkit_py.executor.cdi import ContainerEdits
from buildkit_py.executor.errors import ExecCancelledError, RuntimeStartError
from buildkit_py.executor.forkserver import ForkServer
from buildkit_py.executor.mounts import Mount, MountPreparer, SecretStore
from buildkit_py.executor.network_files import ResolvConfCache, hosts_content
from buildkit_py.executor.spec import DEFAULT_HOSTNAME, SpecInput, build_spec, merge_env
from buildkit_py.executor.stubs import MountStubs
from buildkit_py.executor.user import Identity, resolve_user
from buildkit_py.gostrings import go_quote

KNOWN_RUNTIMES = ("bkpy-runc", "runc", "crun")
STEP_ANNOTATION = "org.bkpy.step"
_READ_CHUNK = 65536
_CANCEL_POLL = 0.1
_KILL_RETRY = 0.5
_KILL_GROUP_AFTER = 3.0
_SHM = Path("/dev/shm")
_SUN_PATH_MAX = 108  # sockaddr_un.sun_path

OutputSink = Callable[[bytes], None]


class _Process(Protocol):
    """What the executor needs of a runtime process (``subprocess.Popen`` has it)."""

    pid: int

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


@dataclass
class ExecRequest:
    """One process to run in a prepared rootfs (an already mounted snapshot directory).

    The rootfs must belong to this exec alone while it runs (each exec gets its own
    snapshot): mount stubs created for one run are removed afterwards, which would pull a
    mount point from under a concurrent run in the same directory.
    """

    rootfs: Path
    args: list[str]
    env: list[str] = field(default_factory=list)
    cwd: str = "/"
    user: str = ""
    hostname: str = DEFAULT_HOSTNAME
    mounts: list[Mount] = field(default_factory=list)
    network: str = "default"  # default | none | host (default = loopback-only netns here)
    security: str = "sandbox"  # sandbox | insecure
    platform: Any = None  # "linux/arm64[/v8]", (os, arch, variant) or a platform object
    extra_hosts: list[tuple[str, str]] = field(default_factory=list)  # (name, ip)
    # (name, soft, hard), e.g. ("nofile", 1024, 2048); -1 is unlimited. When given they
    # are the process's only rlimits, as in BuildKit (the others are inherited).
    ulimits: list[tuple[str, int, int]] = field(default_factory=list)
    devices: ContainerEdits | None = None  # RUN --device: the CDI devices' spec edits
    secrets: SecretStore | None = None
    readonly_rootfs: bool = False
    # On the container (the runtime's `list` shows them): STEP_ANNOTATION names the step,
    # so the step debugger can find a running step's container.
    annotations: dict[str, str] = field(default_factory=dict)


def resolve_runtime(runtime: str) -> Path:
    """The runtime binary for a name (``bkpy-runc``, ``runc``, ``crun``) or a path."""
    if "/" in runtime:
        path = Path(runtime)
        if path.is_file() and os.access(path, os.X_OK):
            return path.absolute()
        raise UsageError(f"OCI runtime {runtime} is not an executable file")
    found: str | None = None
    if runtime == "bkpy-runc":
        # Our own console script next to this interpreter: the one matching this install,
        # and no PATH shims (pyenv's cost tens of milliseconds per call).
        candidate = Path(sys.executable).parent / runtime
        if candidate.is_file() and os.access(candidate, os.X_OK):
            found = str(candidate)
    found = found or shutil.which(runtime)
    if found is None:
        raise UsageError(
            f"OCI runtime {runtime!r} not found on PATH",
            hint=f"choose one of {', '.join(KNOWN_RUNTIMES)} or give a path to the binary",
        )
    return Path(found)


def _bundled_package() -> Path | None:
    """The directory of the bundled runtime's package (``bkpy_runc``), if importable."""
    spec = importlib.util.find_spec("bkpy_runc")
    if spec is not None and spec.origin:
        package = Path(spec.origin).parent
        if (package / "__main__.py").is_file():
            return package
    return None


def runtime_command(name: str, path: Path) -> list[str]:
    """How to invoke the runtime. The bundled one runs straight from its package with
    ``python -S -I``: skipping site start-up (and any .pth imports) saves ~70 ms a RUN."""
    if name == "bkpy-runc":
        package = _bundled_package()
        if package is not None:
            return [sys.executable, "-S", "-I", str(package / "__main__.py")]
    return [str(path)]


def ensure_cwd(root: Path, cwd: str, identity: Identity) -> None:
    """Create the working directory (and missing parents) owned by the run user, mode 0755."""
    path = ""
    for part in rootpath.clean(cwd).strip("/").split("/"):
        if not part:
            continue
        path += "/" + part
        host = rootpath.resolve(root, path)
        if os.path.lexists(host):
            continue
        os.mkdir(host, 0o755)
        os.chown(host, identity.uid, identity.gid)
        os.chmod(host, 0o755)


def _private_dir_ok(path: Path) -> bool:
    """A real directory owned by us and closed to others (not a planted symlink)."""
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and st.st_mode & 0o077 == 0


def _default_bundle_root(state_dir: Path) -> Path:
    # Bundles are small and short-lived: on tmpfs they cost a fraction of a disk round trip,
    # and the secret files and agent sockets kept beside them never touch a disk.
    shm, on_disk = bundle_roots(state_dir)
    if os.path.ismount(_SHM) and _private_dir_ok(shm):
        return shm
    return on_disk


def bundle_roots(state_dir: Path) -> list[Path]:
    """Where an executor on ``state_dir`` may have put its containers' bundles (crash
    recovery looks for the ones a dead builder left; the tmpfs one is shared by roots)."""
    return [_SHM / f"bkpy-bundles-{os.geteuid()}", state_dir / "bundles"]


_IDLE_STATE_DIR = 3600.0


def _prune_idle(shm: Path, keep: str) -> None:
    """Remove empty state dirs unused for an hour (executors that ended without close()).
    One still in use is recreated by the runtime on its next container."""
    cutoff = time.time() - _IDLE_STATE_DIR
    with contextlib.suppress(OSError), os.scandir(shm) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                if entry.name != keep and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.rmdir(entry.path)  # refused unless empty


def _runtime_root(state_dir: Path) -> Path:
    """The runtime's state directory: ``<state>/runtime``, a link to a private tmpfs dir.

    Container state lives only as long as its container (runc keeps it in /run): on tmpfs
    its create/save/remove cost ~0.3 ms a RUN instead of ~8 ms on a busy disk. The path
    under ``state_dir`` stays the one to hand the runtime, so crash recovery finds it.
    """
    link = state_dir / "runtime"
    shm = _SHM / f"bkpy-runtime-{os.geteuid()}"
    if not (os.path.ismount(_SHM) and _private_dir_ok(shm)):
        link.mkdir(mode=0o700, parents=True, exist_ok=True)
        return link
    target = shm / hashlib.sha256(os.fsencode(state_dir)).hexdigest()[:24]
    _prune_idle(shm, keep=target.name)
    target.mkdir(mode=0o700, exist_ok=True)  # again after a reboot emptied the tmpfs
    for _ in range(3):
        try:
            if os.readlink(link) == str(target):
                return link
            os.unlink(link)  # a link from elsewhere (a moved state dir): repointed
        except FileNotFoundError:
            pass
        except OSError:  # a real directory (older layout): left as it is
            if link.is_dir():
                return link
            raise
        try:
            os.symlink(target, link)
            return link
        except FileExistsError:
            continue  # another executor on this state dir made it first
    return link


def _tracing_socket(directory: Path) -> Path | None:
    """A socket file to mount where BuildKit mounts its tracing socket (/dev/otel-grpc.sock,
    0666): nothing listens on it, so a traced tool's connect fails at once. None (nothing
    mounted) when it cannot be made, e.g. a path too long for a unix socket."""
    path = directory / "otel-grpc.sock"
    if len(os.fsencode(path)) >= _SUN_PATH_MAX - 16:  # room for the temporary name
        return None
    try:
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            return None
        return path
    except FileNotFoundError:
        pass
    except OSError:
        return None
    tmp = directory / f".otel-{uuid.uuid4().hex[:8]}.sock"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.bind(str(tmp))
        os.chmod(tmp, 0o666)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return None
    return path


# Files the executor always bind-mounts; their stubs are cleaned up like the user's mounts.
_NETWORK_FILES = ("/etc/resolv.conf", "/etc/hosts")


class Executor:
    """Runs ExecRequests through an OCI runtime; safe to use from several threads."""

    def __init__(self, runtime: str, state_dir: Path, *, bundle_root: Path | None = None,
                 fork_server: bool = True) -> None:
        self.runtime = resolve_runtime(runtime)
        self._runtime_argv = runtime_command(runtime, self.runtime)
        self.state_dir = Path(state_dir).absolute()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._runtime_root = _runtime_root(self.state_dir)
        self.bundle_root = bundle_root or _default_bundle_root(self.state_dir)
        self.bundle_root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.cache_mounts = CacheMountManager.under(self.state_dir)
        self._resolv = ResolvConfCache()
        self._tracing_socket = _tracing_socket(self.state_dir)
        # The bundled runtime's `run`s are forked from one warm process (see forkserver.py).
        self._fork_server: ForkServer | None = None
        package = _bundled_package() if runtime == "bkpy-runc" and fork_server else None
        if package is not None:
            self._fork_server = ForkServer(sys.executable, str(package.parent))
            self._fork_server.start()  # boots while the first step is being prepared

    def close(self) -> None:
        """Stop the runtime's fork server (containers still running are not affected) and
        drop the tmpfs state directory if no container is left in it."""
        if self._fork_server is not None:
            self._fork_server.close()
        if self._runtime_root.is_symlink():
            with contextlib.suppress(OSError):  # not empty: a container is still there
                os.rmdir(os.path.realpath(self._runtime_root))

    def run(
        self,
        req: ExecRequest,
        *,
        stdout: OutputSink,
        stderr: OutputSink,
        cancel: threading.Event | None = None,
    ) -> int:
        """Run ``req`` to completion; returns the process exit status (128+n on signal n)."""
        if cancel is not None and cancel.is_set():
            raise ExecCancelledError("cancelled before start")
        with ExitStack() as stack:
            cid, bundle, spec = self._bundle(req, stack, cancel)
            (bundle / "config.json").write_text(json.dumps(spec))
            return self._run_container(cid, bundle, req.args, stdout, stderr, cancel)
        raise AssertionError("unreachable")  # ExitStack does not swallow exceptions

    def run_interactive(self, req: ExecRequest, *, cancel: threading.Event | None = None,
                        terminal: tuple[int, int] = (0, 1),
                        size: tuple[int, int] | None = None) -> None:
        """Run ``req`` as the step would run, but on a pseudo-terminal relayed to the
        ``terminal`` descriptors (input, output: this process's stdin/stdout, or a remote
        client's stream): the step debugger's shell. Returns when the process ends."""
        # reason: the terminal helpers (termios, tty) are for the step debugger only
        from buildkit_py.executor.terminal import window_size

        with ExitStack() as stack:
            cid, bundle, spec = self._bundle(req, stack, cancel)
            spec["process"]["terminal"] = True
            rows, cols = size or window_size(terminal[0])
            if rows and cols:
                spec["process"]["consoleSize"] = {"height": rows, "width": cols}
            (bundle / "config.json").write_text(json.dumps(spec))
            sock_path = bundle / "console.sock"
            if len(str(sock_path)) >= _SUN_PATH_MAX:
                short = Path(stack.enter_context(_short_tempdir()))
                sock_path = short / "console.sock"
            listener = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
            listener.bind(str(sock_path))
            listener.listen(1)
            pid_file = bundle / "pid"
            started = subprocess.run(
                [*self._runtime_argv, "--root", str(self._runtime_root),
                 "--log", str(bundle / "runtime.log"), "--log-format", "json",
                 "run", "--detach", "--console-socket", str(sock_path),
                 "--pid-file", str(pid_file), "--bundle", str(bundle), cid],
                stdin=subprocess.DEVNULL, capture_output=True, check=False, timeout=60)
            stack.callback(self._runtime_cmd, "delete", "--force", cid)
            if started.returncode != 0:
                message = _runtime_error(bundle / "runtime.log") or started.stderr.decode(
                    errors="replace").strip()
                raise RuntimeStartError(f"the debug shell could not start: {message}")
            _attach(stack, listener, pid_file, terminal, cancel)

    def running_steps(self) -> list[tuple[str, str]]:
        """(container id, step name) of the RUN steps running now under this state dir."""
        res = self._runtime_cmd("list", "--format", "json")
        try:
            states = json.loads(res.stdout or b"null") or []
        except ValueError:
            return []
        return [(str(st["id"]), str((st.get("annotations") or {})[STEP_ANNOTATION]))
                for st in states
                if st.get("status") == "running"
                and STEP_ANNOTATION in (st.get("annotations") or {})]

    def exec_interactive(self, cid: str, args: list[str], *,
                         terminal: tuple[int, int] = (0, 1)) -> None:
        """Run ``args`` in the running container ``cid`` (its namespaces, user, env and
        workdir) on a pseudo-terminal relayed to ``terminal``; returns when it ends."""
        with ExitStack() as stack:
            tmp = Path(stack.enter_context(_short_tempdir()))
            listener = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
            listener.bind(str(tmp / "console.sock"))
            listener.listen(1)
            started = self._runtime_cmd("exec", "--tty", "--detach", "--console-socket",
                                        str(tmp / "console.sock"), "--pid-file",
                                        str(tmp / "pid"), cid, *args)
            if started.returncode != 0:
                raise RuntimeStartError(
                    f"cannot exec in step container {cid}: "
                    f"{started.stderr.decode(errors='replace').strip()}")
            _attach(stack, listener, tmp / "pid", terminal, None)

    def _bundle(self, req: ExecRequest, stack: ExitStack, cancel: threading.Event | None
                ) -> tuple[str, Path, dict[str, Any]]:
        """A container id, its bundle directory and the OCI spec for ``req``; everything
        made for it is undone when ``stack`` closes."""
        if req.platform is not None:
            ensure_platform(req.platform)
        rootfs = Path(os.path.abspath(req.rootfs))
        if not rootfs.is_dir():
            raise BuildError(f"rootfs {rootfs} is not a directory")
        cwd = rootpath.clean(req.cwd or "/")
        cid = "bkpy-" + uuid.uuid4().hex[:24]
        bundle = self.bundle_root / cid

        bundle.mkdir(mode=0o711)
        stack.callback(shutil.rmtree, bundle, True)
        identity = resolve_user(rootfs, req.user)
        ensure_cwd(rootfs, cwd, identity)

        private: list[Path] = []

        def private_dir() -> Path:
            # Secrets and sockets live outside any snapshot (on tmpfs when available).
            if not private:
                path = bundle / "private"
                path.mkdir(mode=0o700)  # removed with the bundle
                private.append(path)
            return private[0]

        preparer = MountPreparer(
            cache=self.cache_mounts,
            private_dir=private_dir,
            stack=stack,
            secrets=req.secrets,
            cancel=cancel,
            args=list(req.args),
        )
        env_names = {e.partition("=")[0] for e in req.env}
        prepared = preparer.prepare(req.mounts, cwd, env_names)
        env = merge_env(req.env, prepared.env)

        hosts = bundle / "hosts"
        hosts.write_bytes(hosts_content(req.hostname, req.extra_hosts))
        resolv = bundle / "resolv.conf"
        resolv.write_bytes(self._resolv.content(own_netns=req.network != "host"))

        spec = build_spec(
            SpecInput(
                rootfs=rootfs,
                args=list(req.args),
                env=env,
                cwd=cwd,
                identity=identity,
                hostname=req.hostname,
                network=req.network,
                security=req.security,
                readonly_rootfs=req.readonly_rootfs,
                hosts_file=hosts,
                resolv_conf=resolv,
                tracing_socket=self._tracing_socket,
                mounts=prepared.oci,
                ulimits=list(req.ulimits),
                devices=req.devices,
                annotations=dict(req.annotations),
            )
        )
        # As BuildKit: only the network files' and the step's own mount points are
        # cleaned up; /dev, /proc and /sys made for the runtime's mounts stay in the layer.
        stubs = MountStubs.record(
            rootfs, [*_NETWORK_FILES, *(m["destination"] for m in prepared.oci)]
        )
        stack.callback(stubs.cleanup)
        return cid, bundle, spec

    def _runtime_cmd(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*self._runtime_argv, "--root", str(self._runtime_root), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
            timeout=60,
        )

    def _run_container(
        self,
        cid: str,
        bundle: Path,
        args: list[str],
        stdout: OutputSink,
        stderr: OutputSink,
        cancel: threading.Event | None,
    ) -> int:
        log = bundle / "runtime.log"
        cmd = [
            *self._runtime_argv, "--root", str(self._runtime_root),
            "--log", str(log), "--log-format", "json",
            "run", "--bundle", str(bundle), cid,
        ]  # fmt: skip
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            proc = self._start(cmd, out_w, err_w)
        except BaseException:
            os.close(out_r)
            os.close(err_r)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        cancelled = False
        clean_exit = False
        try:
            cancelled = self._pump(proc, cid, (out_r, stdout), (err_r, stderr), cancel)
            code = proc.wait()
            clean_exit = not cancelled
        finally:
            if proc.poll() is None:
                self._kill(cid, proc)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
            os.close(out_r)
            os.close(err_r)
            # `run` removes a container that exited on its own; otherwise delete it.
            if not clean_exit or (self._runtime_root / cid).exists():
                self._runtime_cmd("delete", "--force", cid)
        process = go_quote(" ".join(args))
        if cancelled:
            raise ExecCancelledError(f"cancelled: process {process} was killed")
        if code != 0:
            message = _runtime_error(log)
            if message:
                raise RuntimeStartError(f"process {process} could not start: {message}")
        return code

    def _start(self, cmd: list[str], out_w: int, err_w: int) -> _Process:
        """The runtime command, forked by the fork server when there is one."""
        if self._fork_server is not None:
            served = self._fork_server.spawn(cmd[len(self._runtime_argv):], out_w, err_w)
            if served is not None:
                return served
        return subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w, start_new_session=True
        )

    def _kill(self, cid: str, proc: _Process) -> None:
        self._runtime_cmd("kill", cid, "KILL")
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=2)
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def _pump(
        self,
        proc: _Process,
        cid: str,
        stdout: tuple[int, OutputSink],
        stderr: tuple[int, OutputSink],
        cancel: threading.Event | None,
    ) -> bool:
        """Forward output until both pipes close; returns True when cancelled."""
        cancelled = False
        first_kill = last_kill = 0.0
        with selectors.DefaultSelector() as sel:
            sel.register(stdout[0], selectors.EVENT_READ, stdout[1])
            sel.register(stderr[0], selectors.EVENT_READ, stderr[1])
            open_pipes = 2
            timeout = _CANCEL_POLL if cancel is not None else None
            while open_pipes:
                for key, _ in sel.select(timeout):
                    data = os.read(key.fd, _READ_CHUNK)
                    if data:
                        key.data(data)
                    else:
                        sel.unregister(key.fd)
                        open_pipes -= 1
                if cancel is None or not cancel.is_set():
                    continue
                now = time.monotonic()
                if not cancelled:
                    cancelled, first_kill = True, now
                if now - last_kill >= _KILL_RETRY:
                    # Retried: the container may not exist yet when cancel arrives.
                    last_kill = now
                    self._runtime_cmd("kill", cid, "KILL")
                if now - first_kill >= _KILL_GROUP_AFTER:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
        return cancelled


def _attach(stack: ExitStack, listener: socket.socket, pid_file: Path,
            terminal: tuple[int, int], cancel: threading.Event | None) -> None:
    """Take the terminal the runtime sends to ``listener`` and relay it to ``terminal``
    until the process in ``pid_file`` ends (a remote client's stream closing ends it too)."""
    # reason: the terminal relay (termios, tty) is for the step debugger only
    from buildkit_py.executor.terminal import relay, set_size, window_size

    inp, out = terminal
    listener.settimeout(10)
    conn, _ = listener.accept()
    with conn:
        _msg, fds, _flags, _addr = socket.recv_fds(conn, 1024, 1)
    if not fds:
        raise RuntimeStartError("the runtime sent no terminal")
    master = fds[0]
    stack.callback(os.close, master)
    if os.isatty(inp):
        set_size(master, *window_size(inp))
    pidfd = os.pidfd_open(int(pid_file.read_text().strip()))
    stack.callback(os.close, pidfd)
    relay(master, pidfd, cancel, inp=inp, out=out, input_ends=inp != 0)


@contextlib.contextmanager
def _short_tempdir() -> Iterator[str]:
    """A directory whose socket paths fit sun_path whatever the state root's length."""
    import tempfile  # reason: only for a state root too deep for a socket path

    with tempfile.TemporaryDirectory(prefix="bkpy-tty-") as path:
        yield path


def _runtime_error(log: Path) -> str:
    """The runtime's last error message from its log file ("" when it logged none)."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ""
    message = ""
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            if "error" in line.lower():
                message = line
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
            message = str(entry.get("msg", ""))
    return message
