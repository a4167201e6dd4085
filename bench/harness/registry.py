"""A throwaway ``docker-registry`` on 127.0.0.1 for the push scenario.

A fresh one (new port, empty storage) for every push, so no builder finds blobs already
there or mounts them from another repository.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from .errors import BenchError

REGISTRY_BIN = "docker-registry"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalRegistry:
    """``docker-registry serve`` with filesystem storage under ``root``; a context manager."""

    def __init__(self, root: Path) -> None:
        binary = shutil.which(REGISTRY_BIN)
        if binary is None:
            raise BenchError("the push scenario needs docker-registry",
                             hint="apt-get install -y docker-registry, or leave out push")
        self.root = root
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        root.mkdir(parents=True, exist_ok=True)
        config = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(root / "storage")}},
            "http": {"addr": self.host, "secret": uuid.uuid4().hex},
        }
        conf_path = root / "config.yml"
        conf_path.write_text(json.dumps(config))  # JSON is YAML
        self._log = open(root / "registry.log", "wb")
        self.proc = subprocess.Popen([binary, "serve", str(conf_path)], stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        self.stop()
        log = (self.root / "registry.log").read_text(errors="replace")
        raise BenchError(f"docker-registry did not start on {self.host}: {log[-1000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
