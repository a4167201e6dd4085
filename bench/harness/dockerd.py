"""A private dockerd (BuildKit inside) that shares nothing with any other docker daemon.

Its data root, exec root, socket and pidfile live under ``/var/lib/bkpy-bench`` and
``/run/bkpy-bench``; it creates no bridge and touches no iptables, and builds run with
``--network=none``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from .errors import BenchError
from .procs import run_quiet

DATA_ROOT = Path("/var/lib/bkpy-bench/docker")
RUN_DIR = Path("/run/bkpy-bench")
SOCKET = RUN_DIR / "docker.sock"
PIDFILE = RUN_DIR / "docker.pid"
DOCKER_CLI = "/usr/bin/docker"
DOCKERD = "/usr/sbin/dockerd"


def ensure_docker_installed() -> str | None:
    """None when docker is usable, else why not (after trying Debian's docker.io)."""
    if os.access(DOCKER_CLI, os.X_OK) and os.access(DOCKERD, os.X_OK):
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    proc = subprocess.run(["apt-get", "install", "-y", "docker.io"], capture_output=True,
                          text=True, env=env, check=False, stdin=subprocess.DEVNULL)
    if proc.returncode != 0 or not os.access(DOCKERD, os.X_OK):
        return f"apt-get install docker.io failed: {proc.stderr.strip()[-300:]}"
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PrivateDockerd:
    """Start with ``start()``, stop with ``stop()`` (or use as a context manager)."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": f"unix://{SOCKET}", "DOCKER_BUILDKIT": "1"}

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise BenchError("the private dockerd is not running")
        return self.proc.pid

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_quiet([DOCKER_CLI, *args], env=self.env, check=check)

    def _stop_leftover(self) -> None:
        """A dockerd left by an interrupted harness run holds our pidfile: stop it."""
        try:
            pid = int(PIDFILE.read_text().strip())
        except (OSError, ValueError):
            return
        if _alive(pid) and "dockerd" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)

    def start(self) -> None:
        self._stop_leftover()
        DATA_ROOT.mkdir(parents=True, exist_ok=True)
        (RUN_DIR / "exec").mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [DOCKERD, "--data-root", str(DATA_ROOT), "--exec-root", str(RUN_DIR / "exec"),
                 "--host", f"unix://{SOCKET}", "--pidfile", str(PIDFILE), "--bridge=none",
                 "--iptables=false", "--ip-masq=false"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"dockerd exited with {self.proc.returncode}; see {self.log}")
            if self.docker("version", "--format", "{{.Server.Version}}",
                           check=False).returncode == 0:
                break
            time.sleep(0.3)
        else:
            self.stop()
            raise BenchError(f"dockerd did not answer within 60 s; see {self.log}")
        self._drop_bridge()

    @staticmethod
    def _drop_bridge() -> None:
        ip = shutil.which("ip")
        if ip and subprocess.run([ip, "link", "show", "docker0"], capture_output=True,
                                 check=False).returncode == 0:
            subprocess.run([ip, "link", "delete", "docker0"], capture_output=True, check=False)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._drop_bridge()

    def __enter__(self) -> PrivateDockerd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
