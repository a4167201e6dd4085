"""The RUN executor: ExecOp -> OCI bundle -> runtime, with RUN --mount types.

Public API::

    Executor(runtime, state_dir).run(ExecRequest(...), stdout=..., stderr=..., cancel=...) -> int
"""

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
