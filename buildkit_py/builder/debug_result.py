"""The step debugger's shell in a build's result (``--invoke``, ``debug --on=always``).

As buildx opens its monitor on the result of a build that succeeded: a container of the
final stage's filesystem, on a throwaway writable layer (what the shell changes is
discarded), with the image's environment, working directory and user, on the caller's
terminal. Nothing of the build's RUN mounts is there: they belong to the steps.
"""

from __future__ import annotations

import sys
from typing import Any

from buildkit_py.exporter.base import PlatformResult
from buildkit_py.solver.worker import Result
from buildkit_py.worker.ops.common import unwrap
from buildkit_py.worker.worker import BuilderWorker

_DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def open_on_result(worker: BuilderWorker, ref: Result | None, result: PlatformResult,
                   shell: list[str]) -> None:
    # reason: the OCI executor loads when a container runs, not for every build
    from buildkit_py.executor import ExecRequest

    config: dict[str, Any] = result.config.get("config") or {}
    env = list(config.get("Env") or [_DEFAULT_PATH])
    parent = unwrap(ref) if ref is not None else None
    sys.stderr.write(f"\nbkpy debug: the build succeeded; opening {' '.join(shell)} in a "
                     "container of its result (changes are discarded). Exit the shell to "
                     "finish.\n")
    sys.stderr.flush()
    with worker.snapshots.write(parent, commit=False) as layer:
        worker.executor.run_interactive(ExecRequest(
            rootfs=layer.path, args=list(shell), env=env,
            cwd=config.get("WorkingDir") or "/", user=config.get("User") or "",
            platform=result.platform, network="default"))
    sys.stderr.write("bkpy debug: the shell ended\n")
    sys.stderr.flush()
