"""Running the ``git`` binary for the Git source, as BuildKit runs it.

Every command gets a clean environment: no system or user git config (``HOME`` and the
global config are ``/dev/null``), no terminal prompts, the C locale (stable output to
parse), the builder's proxy variables, an ssh that ignores ``~/.ssh/config``, and
``protocol.file.allow=user`` so a repository cannot pull the builder's own files in as a
submodule. Files are created under umask 022, so a checkout has the modes git gives (644,
755) whatever the builder's umask. Each command runs in its own session: no terminal to
prompt on, and ``cancel()`` stops it with everything it spawned.

Credentials never reach argv (``/proc/PID/cmdline`` is world-readable) nor the logs: an
HTTP ``Authorization`` header travels as ``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` in the
environment, which only the builder's own user can read. (BuildKit passes it with ``-c``.)

Like BuildKit, a command is tried again without ``--depth=1`` when the server cannot serve
shallow fetches, and a fetch without its commit refspec when the server refuses to send an
unadvertised commit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from buildkit_py.solver.cancel import Cancelled

_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
               "http_proxy", "https_proxy", "no_proxy", "all_proxy")
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# stderr that means "the server cannot do what this argument asks": retry without it
_NO_DEPTH = ("--depth", "shallow")
_NO_COMMIT_REFSPEC = ("not our ref", "unadvertised object")


def is_commit_sha(text: str) -> bool:
    """A full SHA-1 or SHA-256 object name in lowercase hex."""
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


class GitCommandError(Exception):
    """A git command failed; ``text`` is worded as BuildKit words it."""

    def __init__(self, stderr: str, code: int) -> None:
        self.stderr = stderr
        self.code = code
        super().__init__(self.text)

    @property
    def text(self) -> str:
        return f"git stderr:\n{self.stderr}: exit status {self.code}"


class Processes:
    """The git processes a handler has running, so ``cancel()`` can stop them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()
        self.cancelled = False

    def start(self, argv: list[str], **kw: object) -> subprocess.Popen[bytes]:
        with self._lock:
            if self.cancelled:
                raise Cancelled()
            proc = subprocess.Popen(argv, **kw)  # type: ignore[call-overload]
            self._running.add(proc)
            return proc

    def done(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.discard(proc)

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            running = list(self._running)
        for proc in running:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass


@dataclass(frozen=True)
class GitCLI:
    """One configuration of git (directories, credentials, ssh); ``new`` derives another."""

    processes: Processes
    git_dir: Path | None = None
    work_tree: Path | None = None
    config: tuple[tuple[str, str], ...] = ()  # through the environment (may hold secrets)
    ssh_auth_sock: str | None = None
    known_hosts: str | None = None  # a known_hosts file; None: accept new host keys
    log: Callable[[int, bytes], None] | None = None
    extra_env: tuple[tuple[str, str], ...] = field(default=())

    def new(self, **changes: object) -> GitCLI:
        return replace(self, **changes)  # type: ignore[arg-type]

    def _ssh_command(self) -> str:
        cmd = f"ssh -F {os.devnull}"
        if self.known_hosts:
            return f"{cmd} -o UserKnownHostsFile={self.known_hosts}"
        # BuildKit scans the host's key when the LLB is made and trusts it; accepting a new
        # key (never a changed one) here is the same trust on first use
        return f"{cmd} -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={os.devnull}"

    def _env(self) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", _DEFAULT_PATH),
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_SSH_COMMAND": self._ssh_command(),
            "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": os.devnull,
            "GIT_CONFIG_GLOBAL": os.devnull,
        }
        env.update((k, os.environ[k]) for k in _PROXY_VARS if k in os.environ)
        if self.ssh_auth_sock:
            env["SSH_AUTH_SOCK"] = self.ssh_auth_sock
        if self.config:
            env["GIT_CONFIG_COUNT"] = str(len(self.config))
            for i, (key, value) in enumerate(self.config):
                env[f"GIT_CONFIG_KEY_{i}"] = key
                env[f"GIT_CONFIG_VALUE_{i}"] = value
        env.update(self.extra_env)
        return env

    def run(self, *args: str) -> str:
        """Run ``git ARGS``; its stdout. Raises :class:`GitCommandError`."""
        argv = list(args)
        while True:
            code, out, err = self._run_once(argv)
            if code == 0:
                return out.decode(errors="replace")
            text = err.decode(errors="replace")
            if self.processes.cancelled:
                raise Cancelled()
            retry = _retry_args(argv, text)
            if retry is None:
                raise GitCommandError(text, code)
            argv = retry

    def _run_once(self, argv: Sequence[str]) -> tuple[int, bytes, bytes]:
        full = ["git", "-c", "protocol.file.allow=user"]
        if self.work_tree is not None:
            full += ["--work-tree", str(self.work_tree)]
        if self.git_dir is not None:
            full += ["--git-dir", str(self.git_dir)]
        full += argv
        cwd = self.work_tree or self.git_dir or Path("/")
        proc = self.processes.start(
            full, cwd=cwd, env=self._env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, umask=0o022,
            start_new_session=True)
        try:
            out, err = proc.communicate()
        finally:
            self.processes.done(proc)
        if self.log is not None:
            self.log(1, out)
            self.log(2, err)
        return proc.returncode, out, err


def _retry_args(argv: list[str], stderr: str) -> list[str] | None:
    """The arguments to try again with after ``stderr``, or None (as BuildKit's gitutil)."""
    if any(s in stderr for s in _NO_DEPTH) and "--depth=1" in argv:
        return [a for a in argv if a != "--depth=1"]
    if any(s in stderr for s in _NO_COMMIT_REFSPEC) and len(argv) > 2 and \
            argv[0] == "fetch" and is_commit_sha(argv[-1]):
        return argv[:-1]
    return None
