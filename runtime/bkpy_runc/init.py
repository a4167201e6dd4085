"""PID 1 of the container: start the user process, relay signals, reap, exit with its status."""

from __future__ import annotations

import _signal
import os

from . import process, signals
from .spec import Spec

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~15 ms of start-up; annotations are lazy
    from types import FrameType
    from typing import NoReturn


def exit_code(status: int) -> int:
    """Shell convention: the exit code, or 128+N for death by signal N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def run(spec: Spec, exe: str, env: list[str], err_fd: int, preserve_fds: int) -> NoReturn:
    """Become the user, spawn the process, relay signals to it, reap everything, exit."""
    process.become_user(spec, err_fd, preserve_fds)
    sigs = signals.catchable()
    child = 0

    def relay(signum: int, _frame: FrameType | None) -> None:
        if child:
            try:
                os.kill(child, signum)
            except OSError:
                pass

    # Blocked while spawning so no signal is lost before the child's pid is known.
    _signal.pthread_sigmask(_signal.SIG_BLOCK, sigs)
    for s in sigs:
        _signal.signal(s, relay)
    child = process.spawn(spec, exe, env, sigs)
    os.close(err_fd)
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, sigs)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(255)
        if pid == child:
            # Leftover processes are killed by the kernel when PID 1 exits.
            os._exit(exit_code(status))
