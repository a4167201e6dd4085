"""The two builders under test, driven through their CLIs exactly as a user would.

- ``bkpy``: ``bkpy build`` (embedded builder); cold = a fresh, empty ``BKPY_ROOT`` with
  the base images imported. By default a warm command server (``bkpy server start``)
  runs for that root, as dockerd runs for BuildKit; ``server=False`` makes every command
  a fresh process.
- ``buildkit``: ``docker build`` against the private dockerd (BuildKit inside); cold =
  ``docker builder prune -af`` and every non-base image removed.

Single-platform results go into each builder's local image store (``--load`` for bkpy,
the docker image store for BuildKit). The two-platform case exports ``type=tar`` because
the docker driver cannot store a multi-platform image; docker 20.10's engine also refuses
a platform list, so BuildKit's two-platform build is two concurrent single-platform
``docker build`` runs.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from .cases import Case
from .dockerd import DOCKER_CLI, PrivateDockerd
from .images import BaseImage
from .procs import Command, Measurement, measure, run_quiet


class Builder(Protocol):
    name: str

    def reset(self, case: Case) -> None:
        """Empty every cache, keep only the case's base images."""

    def build(self, case: Case, ctx: Path, log: Path) -> Measurement: ...

    def push(self, case: Case, ctx: Path, registry: str, log: Path) -> Measurement | None:
        """Build (cached) and push to ``registry``; None if the builder cannot."""

    def close(self) -> None:
        """Remove what the builder left in the work directory."""


def _bkpy_command() -> list[str]:
    # The console script beside this interpreter: no pyenv shim or other wrapper in the timing.
    script = Path(sys.executable).parent / "bkpy"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "buildkit_py"]


def _arch(platform: str) -> str:
    return platform.split("/")[1]


class BkpyBuilder:
    name = "bkpy"

    def __init__(self, work: Path, images: Sequence[BaseImage], server: bool = True) -> None:
        self.work = work
        self.server = server
        self.server_pid: int | None = None
        self.images = {i.tag: i for i in images}
        self.cmd = _bkpy_command()
        self.root = work / "bkpy-root"
        self.out = work / "bkpy-out"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "BKPY_ROOT": str(self.root)}

    def reset(self, case: Case) -> None:
        self._stop_server()
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.out, ignore_errors=True)
        self.root.mkdir(parents=True)
        self.out.mkdir(parents=True)
        for tag in case.base_images:
            run_quiet([*self.cmd, "image", "import", str(self.images[tag].archive), tag],
                      env=self.env)
        if self.server:
            started = run_quiet([*self.cmd, "server", "start", "--idle-timeout", "0"],
                                env=self.env).stdout
            match = re.search(r"pid (\d+)", started)
            self.server_pid = int(match.group(1)) if match else None

    def _stop_server(self) -> None:
        if self.server_pid is not None:
            run_quiet([*self.cmd, "server", "stop"], env=self.env, check=False)
            self.server_pid = None

    @property
    def _daemons(self) -> list[int]:
        # the work happens in the server's forked children: count their memory
        return [self.server_pid] if self.server_pid is not None else []

    def _args(self, case: Case) -> list[str]:
        args = [*self.cmd, "build", "--progress", "plain", "--network", "none"]
        if case.platforms:
            args += ["--platform", ",".join(case.platforms)]
        return args

    def build(self, case: Case, ctx: Path, log: Path) -> Measurement:
        if case.multi_platform:
            out = ["-o", f"type=tar,dest={self.out / 'result.tar'}"]
        else:
            out = ["-t", f"bench/{case.name}:latest", "--load"]
        return measure([[[*self._args(case), *out, str(ctx)]]], env=self.env, log=log,
                       daemon_pids=self._daemons)

    def push(self, case: Case, ctx: Path, registry: str, log: Path) -> Measurement | None:
        cmd = [*self._args(case), "-t", f"{registry}/bench/{case.name}:latest", "--push",
               str(ctx)]
        return measure([[cmd]], env=self.env, log=log, daemon_pids=self._daemons)

    def close(self) -> None:
        self._stop_server()
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.out, ignore_errors=True)


class DockerBuilder:
    name = "buildkit"

    def __init__(self, dockerd: PrivateDockerd, work: Path, images: Sequence[BaseImage]) -> None:
        self.dockerd = dockerd
        self.out = work / "docker-out"
        self.base_tags = {i.tag for i in images}
        for image in images:
            dockerd.docker("load", "-i", str(image.archive))

    def reset(self, case: Case) -> None:
        self.dockerd.docker("builder", "prune", "-af")
        listing = self.dockerd.docker("images", "--format", "{{.Repository}}:{{.Tag}}")
        doomed = [ref for ref in listing.stdout.split()
                  if ref not in self.base_tags and not ref.endswith(":<none>")]
        if doomed:
            self.dockerd.docker("image", "rm", "-f", *doomed)
        self.dockerd.docker("image", "prune", "-f")
        shutil.rmtree(self.out, ignore_errors=True)
        self.out.mkdir(parents=True)

    @staticmethod
    def _args() -> list[str]:
        return [DOCKER_CLI, "build", "--network=none", "--progress=plain"]

    def _platform_builds(self, case: Case, ctx: Path) -> list[Command]:
        # The engine's builtin frontend leaves TARGETARCH empty in the global scope, so it
        # is passed explicitly; the value is what BuildKit would set itself.
        return [[*self._args(), "--platform", p, "--build-arg", f"TARGETARCH={_arch(p)}",
                 "-o", f"type=tar,dest={self.out / (_arch(p) + '.tar')}", str(ctx)]
                for p in case.platforms]

    def build(self, case: Case, ctx: Path, log: Path) -> Measurement:
        if case.multi_platform:
            groups: list[list[Command]] = [self._platform_builds(case, ctx)]
        else:
            platform = ["--platform", case.platforms[0]] if case.platforms else []
            groups = [[[*self._args(), *platform, "-t", f"bench/{case.name}:latest",
                        str(ctx)]]]
        return measure(groups, env=self.dockerd.env, log=log, daemon_pids=[self.dockerd.pid])

    def push(self, case: Case, ctx: Path, registry: str, log: Path) -> Measurement | None:
        if case.multi_platform:
            return None  # needs buildx (manifest lists); docker.io 20.10 has no buildx
        ref = f"{registry}/bench/{case.name}:latest"
        groups: list[list[Command]] = [[[*self._args(), "-t", ref, str(ctx)]],
                                       [[DOCKER_CLI, "push", ref]]]
        return measure(groups, env=self.dockerd.env, log=log, daemon_pids=[self.dockerd.pid])

    def close(self) -> None:
        shutil.rmtree(self.out, ignore_errors=True)
