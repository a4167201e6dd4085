"""Reference counting of worker results shared by jobs, builds and the caller."""

from __future__ import annotations

import threading
from collections.abc import Callable

from buildkit_py.solver.worker import Result


class SharedResult:
    """One worker result with a count of holders; the last release frees it."""

    __slots__ = ("_lock", "_on_free", "_refs", "result")

    def __init__(self, result: Result, on_free: Callable[[Result], None] | None = None) -> None:
        self.result = result
        self._on_free = on_free
        self._lock = threading.Lock()
        self._refs = 0

    def ref(self) -> ResultRef:
        """A new counted reference."""
        with self._lock:
            if self._refs < 0:
                raise RuntimeError(f"result {self.result.id} was already freed")
            self._refs += 1
        return ResultRef(self)

    def _drop(self) -> None:
        with self._lock:
            self._refs -= 1
            if self._refs > 0:
                return
            self._refs = -1
        try:
            self.result.release()
        finally:
            if self._on_free is not None:
                self._on_free(self.result)


class ResultRef:
    """A counted handle to a worker result; implements the :class:`Result` protocol.

    ``release()`` is idempotent; the underlying worker result is released when the last
    handle is. ``clone()`` makes an independent handle.
    """

    __slots__ = ("_released", "_shared")

    def __init__(self, shared: SharedResult) -> None:
        self._shared = shared
        self._released = False

    @property
    def result(self) -> Result:
        """The worker's own result object (what op handlers receive as inputs)."""
        return self._shared.result

    @property
    def id(self) -> str:
        return self._shared.result.id

    @property
    def size(self) -> int:
        return self._shared.result.size

    def clone(self) -> ResultRef:
        if self._released:
            raise RuntimeError(f"result {self.id} is released")
        return self._shared.ref()

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._shared._drop()

    def __repr__(self) -> str:
        return f"ResultRef({self.id!r}{', released' if self._released else ''})"
