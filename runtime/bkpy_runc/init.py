"""The container init's last step: become the user process (PID 1); exit-status helpers."""

from __future__ import annotations

import os

from . import process
from .spec import Spec

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~15 ms of start-up; annotations are lazy
    from typing import NoReturn


def exit_code(status: int) -> int:
    """Shell convention: the exit code, or 128+N for death by signal N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def run(spec: Spec, exe: str, env: list[str], err_fd: int, preserve_fds: int) -> NoReturn:
    """Become the user and exec the process as PID 1, as runc does: no init stays between
    the container and the process. ``err_fd`` (close-on-exec) reports a failure before the
    exec; its EOF tells the runtime the process runs."""
    process.become_user(spec, err_fd, preserve_fds)
    process.exec_user(spec, exe, env)
