"""The RUN executor: ExecOp -> OCI bundle -> runtime, with RUN --mount types.

Public API::

    Executor(runtime, state_dir).run(ExecRequest(...), stdout=..., stderr=..., cancel=...) -> int
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from buildkit_py.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from buildkit_py.executor.binfmt import emulated_platforms, ensure_platform
    from buildkit_py.executor.errors import ExecCancelledError, RuntimeStartError
    from buildkit_py.executor.executor import ExecRequest, Executor, resolve_runtime
    from buildkit_py.executor.mounts import (
        BindMount,
        CacheMount,
        Mount,
        SecretMount,
        SecretStore,
        SshMount,
        TmpfsMount,
    )

# Exported name -> defining module, imported on first access: a fully cached build that
# only needs executor.user (COPY --chown) must not load the whole executor.
_LAZY: dict[str, str] = {
    "BindMount": "buildkit_py.executor.mounts",
    "CacheMount": "buildkit_py.executor.mounts",
    "ExecCancelledError": "buildkit_py.executor.errors",
    "ExecRequest": "buildkit_py.executor.executor",
    "Executor": "buildkit_py.executor.executor",
    "Mount": "buildkit_py.executor.mounts",
    "RuntimeStartError": "buildkit_py.executor.errors",
    "SecretMount": "buildkit_py.executor.mounts",
    "SecretStore": "buildkit_py.executor.mounts",
    "SshMount": "buildkit_py.executor.mounts",
    "TmpfsMount": "buildkit_py.executor.mounts",
    "emulated_platforms": "buildkit_py.executor.binfmt",
    "ensure_platform": "buildkit_py.executor.binfmt",
    "resolve_runtime": "buildkit_py.executor.executor",
}

__all__ = [
    "BindMount",
    "CacheMount",
    "ExecCancelledError",
    "ExecRequest",
    "Executor",
    "Mount",
    "RuntimeStartError",
    "SecretMount",
    "SecretStore",
    "SshMount",
    "TmpfsMount",
    "emulated_platforms",
    "ensure_platform",
    "resolve_runtime",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
