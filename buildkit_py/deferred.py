"""Upkeep a command may finish after it has answered its caller.

A command the command server runs sends its exit status to the ``bkpy`` process waiting
on it, and that process exits at once. Upkeep the answer does not depend on (removing
the history records retention no longer keeps: ~15% of a no-op rebuild) can run after
that, in the served child, where nobody waits for it. :func:`later` queues such work
once the process has said it will run it (:func:`collect`, then :func:`run_collected`);
everywhere else (a command run in its own process, the ``bkpyd`` daemon) the work runs
at once, as it always did. Queued work must be silent and may be lost (the child killed
first): the next command's own upkeep catches up.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_collecting = False
_queue: list[Callable[[], object]] = []


def collect() -> None:
    """From now on :func:`later` queues its work in this process."""
    global _collecting
    with _lock:
        _collecting = True


def later(work: Callable[[], object]) -> None:
    """Run ``work`` after the answer when this process collects, else now."""
    with _lock:
        if _collecting:
            _queue.append(work)
            return
    work()


def flush() -> int:
    """Run the queued work now, in order (collecting goes on); how many there were. For
    work the next step depends on: a builder left open for later holds the state
    directory's lock, so opening another one first closes it. A failure is logged, never
    raised."""
    with _lock:
        queued = _queue[:]
        _queue.clear()
    for work in queued:
        try:
            work()
        except Exception:
            _log.debug("deferred upkeep failed", exc_info=True)
    return len(queued)


def run_collected() -> int:
    """Stop collecting and run what was queued (:func:`flush`)."""
    global _collecting
    with _lock:
        _collecting = False
    return flush()
