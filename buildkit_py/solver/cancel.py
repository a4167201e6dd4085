"""Cancellation tokens shared between the solver, its caller and the worker's op handlers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from buildkit_py.errors import BuildError

_log = logging.getLogger(__name__)


class Cancelled(BuildError):
    """The build (or one vertex of it) was cancelled before it finished."""

    def __init__(self, reason: str = "build cancelled") -> None:
        super().__init__(reason)


class CancelToken:
    """A one-shot, thread-safe cancellation flag with callbacks.

    Op handlers poll :attr:`cancelled` / :meth:`raise_if_cancelled` between steps or
    block in :meth:`wait`; long-running work (a container process) is stopped through the
    handler's ``cancel()``, which the solver calls when it cancels the token.
    """

    __slots__ = ("_callbacks", "_event", "_lock", "reason")

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []
        self.reason = ""

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self, reason: str = "build cancelled") -> None:
        """Set the flag (idempotent) and run the registered callbacks once."""
        with self._lock:
            if self._event.is_set():
                return
            self.reason = reason
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            try:
                cb()
            except Exception:  # one failing stopper must not keep the others from running
                _log.exception("cancel callback %r failed", cb)

    def add_callback(self, cb: Callable[[], None]) -> Callable[[], None]:
        """Run ``cb`` on cancellation (now, if already cancelled); return an unregister fn."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(cb)

                def remove() -> None:
                    with self._lock:
                        if cb in self._callbacks:
                            self._callbacks.remove(cb)

                return remove
        cb()
        return lambda: None

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled(self.reason or "build cancelled")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled or ``timeout`` passes; True when cancelled."""
        return self._event.wait(timeout)
