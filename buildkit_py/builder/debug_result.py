"""The step debugger's shells outside a running step: in a build's result (``--invoke``,
``debug --on=always``) and in a past build's failed step (``bkpy history debug``).

As buildx opens its monitor on the result of a build that succeeded: a container of the
final stage's filesystem, on a throwaway writable layer (what the shell changes is
discarded), with the image's environment, working directory and user, on the caller's
terminal. Nothing of the build's RUN mounts is there: they belong to the steps.

A post-mortem rebuilds the failed step's container from what the history kept: the
snapshot the step ran on (if the cache still has it) plus the files the step changed
before failing, with its command's environment, working directory, user and network; its
RUN mounts (cache, secrets, bind) are not there any more.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from buildkit_py.errors import UserError
from buildkit_py.exporter.base import PlatformResult
from buildkit_py.solver.worker import Result
from buildkit_py.worker.ops.common import unwrap
from buildkit_py.worker.results import SnapshotResult
from buildkit_py.worker.session import BuildSession, say
from buildkit_py.worker.worker import BuilderWorker

_DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def open_on_result(worker: BuilderWorker, ref: Result | None, result: PlatformResult,
                   session: BuildSession) -> None:
    # reason: the OCI executor loads when a container runs, not for every build
    from buildkit_py.executor import ExecRequest

    shell = list(session.debug_shell or ["/bin/sh"])
    config: dict[str, Any] = result.config.get("config") or {}
    env = list(config.get("Env") or [_DEFAULT_PATH])
    parent = unwrap(ref) if ref is not None else None
    with session.terminal() as (inp, out):
        say(out, f"bkpy debug: the build succeeded; opening {' '.join(shell)} in a container "
                 "of its result (changes are discarded). Exit the shell to finish.")
        with worker.snapshots.write(parent, commit=False) as layer:
            worker.executor.run_interactive(ExecRequest(
                rootfs=layer.path, args=shell, env=env,
                cwd=config.get("WorkingDir") or "/", user=config.get("User") or "",
                platform=result.platform, network="default"),
                terminal=(inp, out), size=session.terminal_size())
        say(out, "bkpy debug: the shell ended")


def open_on_failed_step(worker: BuilderWorker, state: dict[str, Any], diff: Path,
                        shell: list[str]) -> None:
    """``shell`` in the container of a past build's failed step (see the module doc)."""
    # reason: the OCI executor loads when a container runs, not for every build
    from buildkit_py.executor import ExecRequest

    parent = state.get("parent")
    if parent is not None:
        try:
            worker.sn.stat(parent)
        except UserError:
            raise UserError(f"the files the failed step ran on are gone (snapshot {parent} "
                            "was pruned)", hint="re-run the build with `bkpy debug build ...`"
                            ) from None
    try:
        tar = open(diff, "rb")
    except OSError:
        why = state.get("files_dropped") or "they were not kept"
        raise UserError(f"this build's history keeps no files of its failed step ({why})",
                        hint="re-run the build with `bkpy debug build ...`") from None
    with tar:
        layer = worker.snapshots.layer_from_tar(SnapshotResult(parent), tar)
    try:
        sys.stderr.write(f"bkpy debug: {state.get('name', 'the failed step')}: opening "
                         f"{' '.join(shell)} in its container as the failure left it "
                         "(without its RUN mounts). Exit the shell to finish.\n")
        sys.stderr.flush()
        with worker.snapshots.write(layer, commit=False) as active:
            worker.executor.run_interactive(ExecRequest(
                rootfs=active.path, args=list(shell), env=list(state.get("env") or []),
                cwd=state.get("cwd") or "/", user=state.get("user") or "",
                hostname=state.get("hostname") or "buildkitsandbox",
                platform=state.get("platform"), network=state.get("network") or "default"))
    finally:
        worker.sn.remove(str(layer.key))
    sys.stderr.write("bkpy debug: the shell ended\n")
    sys.stderr.flush()
