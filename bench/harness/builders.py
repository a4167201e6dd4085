"""The builders under test, driven through their CLIs exactly as a user would.

- ``bkpy``: ``bkpy build`` (embedded builder) as users run it by default: a fresh ``bkpy``
  process per command and whatever that process does by default (hand the command to a
  warm command server when one runs for the root, start one if the default launch path
  does). First = every server for the root stopped and a fresh, empty ``BKPY_ROOT``: the
  first command after a boot or an idle timeout. Cold = a fresh, empty ``BKPY_ROOT`` with
  its server (re)started and warm, untimed, as BuildKit's daemon is for its cold build.
- ``bkpy-no-server``: the same with ``BKPY_NO_SERVER=1``: every command is a fresh Python
  running the whole build in-process (its own state root).
- ``buildkit``: ``buildctl build --frontend dockerfile.v0`` against a private buildkitd
  of the referee's build (see ``buildkitd.py``); cold = that daemon stopped, its root
  deleted, started again (untimed); first = the same with the daemon's start timed.

Base images come from the run's registry (``base_registry.py``): both pull them. A
single-platform result goes into each builder's image store: ``bkpy --load`` (bkpy's
``type=image`` store) and BuildKit's ``--output type=image,name=...`` (its content and
image store, nothing pushed or unpacked). The two-platform case exports ``type=tar`` on
both (one tar, a folder per platform). Push: ``bkpy build --push -t REG/...`` and
``--output type=image,name=REG/...,push=true``, both in one command.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Protocol

from .buildkitd import ADDR, PrivateBuildkitd
from .cases import Case
from .procs import EnvFinder, Measurement, measure, run_quiet

NO_SERVER_ENV = "BKPY_NO_SERVER"


class Builder(Protocol):
    name: str

    def reset(self, case: Case) -> None:
        """Empty every cache and image store; the builder's long-lived process (bkpy's
        command server, buildkitd) running and ready, as it is before a user's build."""

    def first(self, case: Case, ctx: Path, log: Path) -> Measurement | None:
        """The first build after a boot: nothing running, everything empty, the start of
        any long-lived process timed with the build. None when that is the cold build."""

    def build(self, case: Case, ctx: Path, log: Path) -> Measurement: ...

    def push(self, case: Case, ctx: Path, registry: str, log: Path) -> Measurement | None:
        """Build (cached) and push to ``registry``; None if the builder cannot."""

    def close(self) -> None:
        """Stop what the builder started, remove what it left in the work directory."""


def _bkpy_command() -> list[str]:
    # The console script beside this interpreter: no pyenv shim or other wrapper in the timing.
    script = Path(sys.executable).parent / "bkpy"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "buildkit_py"]


class BkpyBuilder:
    def __init__(self, work: Path, server: bool = True) -> None:
        self.name = "bkpy" if server else "bkpy-no-server"
        self.server = server
        self.cmd = _bkpy_command()
        self.root = work / f"{self.name}-root"
        self.out = work / f"{self.name}-out"
        self.env = {k: v for k, v in os.environ.items() if k != NO_SERVER_ENV}
        self.env["BKPY_ROOT"] = str(self.root)
        if not server:
            self.env[NO_SERVER_ENV] = "1"

    def _empty(self) -> None:
        self._stop_server()
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.out, ignore_errors=True)
        self.root.mkdir(parents=True)
        self.out.mkdir(parents=True)

    def reset(self, case: Case) -> None:
        self._empty()
        if self.server:
            run_quiet([*self.cmd, "server", "start"], env=self.env)
            # Served only once the warm-up is over: this waits for it.
            run_quiet([*self.cmd, "--version"], env=self.env)

    def first(self, case: Case, ctx: Path, log: Path) -> Measurement | None:
        if not self.server:
            return None
        self._empty()
        return self.build(case, ctx, log)

    def _stop_server(self) -> None:
        if self.server and self.root.exists():
            run_quiet([*self.cmd, "server", "stop"], env=self.env, check=False)

    def _measure(self, cmd: list[str], log: Path) -> Measurement:
        # A server the command starts detaches from it: found by its BKPY_ROOT, and counted
        # with its forked workers.
        return measure([[cmd]], env=self.env, log=log,
                       find_daemons=EnvFinder("BKPY_ROOT", str(self.root)))

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
        return self._measure([*self._args(case), *out, str(ctx)], log)

    def push(self, case: Case, ctx: Path, registry: str, log: Path) -> Measurement | None:
        return self._measure([*self._args(case), "-t", f"{registry}/bench/{case.name}:latest",
                              "--push", str(ctx)], log)

    def close(self) -> None:
        self._stop_server()
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.out, ignore_errors=True)


class BuildkitBuilder:
    name = "buildkit"

    def __init__(self, daemon: PrivateBuildkitd, work: Path) -> None:
        self.daemon = daemon
        self.out = work / "buildkit-out"

    def reset(self, case: Case) -> None:
        self.daemon.wipe()
        shutil.rmtree(self.out, ignore_errors=True)
        self.out.mkdir(parents=True)

    def first(self, case: Case, ctx: Path, log: Path) -> Measurement | None:
        self.daemon.wipe(start=False)
        shutil.rmtree(self.out, ignore_errors=True)
        self.out.mkdir(parents=True)
        started = time.perf_counter()
        self.daemon.start()
        boot = time.perf_counter() - started
        m = self.build(case, ctx, log)
        return Measurement(m.seconds + boot, m.peak_rss_kb, m.ok, m.detail)

    def _args(self, case: Case, ctx: Path) -> list[str]:
        args = [self.daemon.buildctl_bin, "--addr", ADDR, "build", "--progress", "plain",
                "--frontend", "dockerfile.v0", "--local", f"context={ctx}",
                "--local", f"dockerfile={ctx}", "--opt", "force-network-mode=none"]
        if case.platforms:
            args += ["--opt", f"platform={','.join(case.platforms)}"]
        return args

    def _measure(self, cmd: list[str], log: Path) -> Measurement:
        return measure([[cmd]], env=dict(os.environ), log=log,
                       daemon_pids=[self.daemon.pid])

    def build(self, case: Case, ctx: Path, log: Path) -> Measurement:
        if case.multi_platform:
            out = f"type=tar,dest={self.out / 'result.tar'}"
        else:
            out = f"type=image,name=bench/{case.name}:latest"
        return self._measure([*self._args(case, ctx), "--output", out], log)

    def push(self, case: Case, ctx: Path, registry: str, log: Path) -> Measurement | None:
        out = f"type=image,name={registry}/bench/{case.name}:latest,push=true"
        return self._measure([*self._args(case, ctx), "--output", out], log)

    def close(self) -> None:
        shutil.rmtree(self.out, ignore_errors=True)
