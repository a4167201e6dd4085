"""Errors raised by the executor beyond plain BuildError."""

from __future__ import annotations

from buildkit_py.errors import BuildError


class ExecCancelledError(BuildError):
    """The exec was cancelled; its container (if started) has been killed and removed."""


class RuntimeStartError(BuildError):
    """The runtime could not start the process (bad executable, bad mount, ...)."""


class UnknownUserError(BuildError):
    """The user or group to run as is not in the rootfs (BuildKit reports it as the process
    failing, not as a step setup error)."""
