"""A private ``buildkitd`` of the referee's build (the newest BuildKit) for the benchmark.

The binaries are the referee's (``../shared/tools/buildkit-referee build`` puts them in
``/var/tmp/buildkit-referee/bin``), configured as the referee runs them: OCI worker,
overlayfs snapshotter, runc, no containerd worker. The daemon is the harness's own, not
the shared referee at ``/run/buildkit-referee``, for two reasons:

- a cold build must start from nothing. ``buildctl prune --all`` drops the build cache
  but not the image store (``type=image`` results keep their blobs in the content store)
  nor the daemon's metadata; stopping the daemon and deleting its root does reset all of
  it. Doing that to the shared referee would pull the floor from under anyone else using
  it.
- its memory is ours to measure: the sampled process tree is this daemon (plus runc and
  the containers it starts) and nothing another session builds on the referee.

Its root, config and log live under the benchmark's work directory; the socket is under
``/run/bkpy-bench`` (a short path: ``sun_path`` holds 108 bytes).
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

REFEREE_BIN = Path(os.environ.get("REFEREE_DIR", "/var/tmp/buildkit-referee")) / "bin"
RUN_DIR = Path("/run/bkpy-bench/buildkitd")
SOCKET = RUN_DIR / "buildkitd.sock"
ADDR = f"unix://{SOCKET}"
PIDFILE = RUN_DIR / "buildkitd.pid"


def find_binaries() -> tuple[str, str] | str:
    """(buildkitd, buildctl) from the referee's build (else PATH), or why they are missing."""
    found = []
    for name in ("buildkitd", "buildctl"):
        candidate = REFEREE_BIN / name
        path = str(candidate) if candidate.is_file() else shutil.which(name)
        if path is None:
            return (f"no {name}: build the referee with ../shared/tools/buildkit-referee build "
                    "BUILDKIT_GIT_DIR BUILDX_GIT_DIR")
        found.append(path)
    if shutil.which("runc") is None:
        return "no runc (apt-get install runc)"
    return found[0], found[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _mounts_under(root: Path) -> list[str]:
    """Mount points at or below ``root``, deepest first (so they unmount in order)."""
    prefix = str(root)
    points = []
    with open("/proc/self/mounts") as fh:
        for line in fh:
            point = line.split()[1].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


class PrivateBuildkitd:
    """``start()`` / ``stop()`` / ``wipe()`` (stop, delete every byte of state, start)."""

    def __init__(self, work: Path, buildkitd: str, buildctl: str) -> None:
        self.buildkitd = buildkitd
        self.buildctl_bin = buildctl
        self.dir = work / "buildkitd"
        self.root = self.dir / "root"
        self.config = self.dir / "buildkitd.toml"
        self.log = work / "logs" / "buildkitd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise BenchError("the private buildkitd is not running")
        return self.proc.pid

    def buildctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_quiet([self.buildctl_bin, "--addr", ADDR, *args], check=check)

    def version(self) -> str:
        out = self.buildctl("debug", "info", check=False).stdout
        for line in out.splitlines():
            if line.startswith("BuildKit:"):
                return line.split(":", 1)[1].strip()
        return "unknown"

    def _write_config(self) -> None:
        # The referee's configuration (buildkit-referee start) with our root and socket.
        # Registries on 127.0.0.1 (any port) are plain http by BuildKit's own default.
        self.config.write_text(
            f'root = "{self.root}"\n'
            f'[grpc]\n  address = ["{ADDR}"]\n'
            '[worker.oci]\n  enabled = true\n  snapshotter = "overlayfs"\n'
            '[worker.containerd]\n  enabled = false\n')

    def _stop_leftover(self) -> None:
        """A buildkitd left by an interrupted harness run holds our socket: stop it."""
        try:
            pid = int(PIDFILE.read_text().strip())
        except (OSError, ValueError):
            return
        cmdline = Path(f"/proc/{pid}/cmdline")
        if _alive(pid) and cmdline.exists() and "buildkitd" in cmdline.read_text(errors="replace"):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)

    def start(self) -> None:
        self._stop_leftover()
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        self._write_config()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([self.buildkitd, "--config", str(self.config)],
                                         stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        PIDFILE.write_text(f"{self.proc.pid}\n")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"buildkitd exited with {self.proc.returncode}; see {self.log}")
            if self.buildctl("debug", "workers", check=False).returncode == 0:
                return
            time.sleep(0.1)
        self.stop()
        raise BenchError(f"buildkitd did not answer within 30 s; see {self.log}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        PIDFILE.unlink(missing_ok=True)

    def wipe(self, start: bool = True) -> None:
        """Stop, delete the whole root (cache, content, images, metadata), start again
        (unless ``start`` is false)."""
        self.stop()
        for point in _mounts_under(self.root):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        if start:
            self.start()

    def close(self) -> None:
        self.stop()
        for point in _mounts_under(self.root):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
