"""Signal names and numbers (``_signal`` avoids the enum-building ``signal`` module)."""

from __future__ import annotations

import _signal

from .errors import RuntimeFailure

# Signals `bkpy-runc run` relays from its caller to the container (runc relays all but
# SIGCHLD, SIGURG and terminal-size changes).
RELAYED = tuple(getattr(_signal, n) for n in (
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGTERM", "SIGCONT",
    "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGVTALRM", "SIGPROF", "SIGIO", "SIGPWR", "SIGXCPU",
    "SIGXFSZ", "SIGWINCH", "SIGSYS", "SIGTRAP", "SIGABRT",
))


def catchable() -> list[int]:
    """Every signal an init can install a handler for, except SIGCHLD which it waits on."""
    skip = {_signal.SIGKILL, _signal.SIGSTOP, _signal.SIGCHLD, 32, 33}  # 32/33: libc-internal
    return [s for s in range(1, _signal.NSIG) if s not in skip]


def parse(text: str) -> int:
    """A signal given as a number, ``TERM``, ``SIGTERM`` or ``RTMIN+3``."""
    if text.isdigit():
        num = int(text)
        if 0 < num < _signal.NSIG:
            return num
        raise RuntimeFailure(f"invalid signal {text!r}")
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    for base, op in (("SIGRTMIN+", 1), ("SIGRTMAX-", -1)):
        if name.startswith(base) and name[len(base):].isdigit():
            start = _signal.SIGRTMIN if op == 1 else _signal.SIGRTMAX
            return int(start + op * int(name[len(base):]))
    found = getattr(_signal, name, None)
    if not isinstance(found, int) or name.startswith("SIG_"):
        raise RuntimeFailure(f"unknown signal {text!r}")
    return found
