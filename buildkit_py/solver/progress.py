"""Progress events of a solve and the bus that fans them out to subscribers.

Events flow from every vertex (the solver and the worker's op handlers, on any thread)
to the CLI display or the daemon's status stream. Timestamps are Unix seconds (float).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_log = logging.getLogger(__name__)

STDOUT = 1
STDERR = 2


@dataclass(frozen=True, slots=True)
class VertexStarted:
    """A vertex began executing."""

    digest: str
    name: str
    started: float
    inputs: tuple[str, ...] = ()  # the digests of the vertices it consumes


@dataclass(frozen=True, slots=True)
class VertexCached:
    """A vertex's result comes from the cache (it will not run)."""

    digest: str
    name: str
    timestamp: float
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VertexCacheMiss:
    """Why a vertex that is about to run was not served from the cache (bkpy's own event:
    BuildKit has none). Sent once, right after its ``VertexStarted``."""

    digest: str
    name: str
    reason: str
    timestamp: float


@dataclass(frozen=True, slots=True)
class VertexCompleted:
    """A vertex finished executing successfully."""

    digest: str
    name: str
    started: float
    completed: float


@dataclass(frozen=True, slots=True)
class VertexFailed:
    """A vertex failed, or was cancelled (``cancelled``) because the build stopped."""

    digest: str
    name: str
    started: float
    completed: float
    error: str
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class VertexLog:
    """A raw output chunk of a vertex; stream 1 = stdout, 2 = stderr."""

    digest: str
    stream: int
    data: bytes
    timestamp: float


@dataclass(frozen=True, slots=True)
class VertexStatus:
    """Sub-progress within a vertex (bytes pulled, files transferred, ...)."""

    id: str
    digest: str
    name: str
    current: int
    total: int | None
    timestamp: float
    started: float
    completed: float | None = None


ProgressEvent = (
    VertexStarted | VertexCached | VertexCompleted | VertexFailed | VertexLog | VertexStatus
    | VertexCacheMiss
)
# Where a build's progress goes: a display, a gRPC stream, a test's list.
ProgressSink = Callable[[ProgressEvent], None]

_CLOSED = object()


class ProgressSubscription:
    """A live subscription; :meth:`close` stops delivery."""

    __slots__ = ("_bus", "_callback")

    def __init__(self, bus: ProgressBus, callback: Callable[[ProgressEvent], None]) -> None:
        self._bus = bus
        self._callback = callback

    def close(self) -> None:
        self._bus._unsubscribe(self._callback)


class ProgressStream:
    """Iterates events of a bus from the moment of subscription until the bus closes."""

    def __init__(self, bus: ProgressBus) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._sub = bus.subscribe(self._queue.put, on_close=lambda: self._queue.put(_CLOSED))

    def __iter__(self) -> Iterator[ProgressEvent]:
        while True:
            item = self._queue.get()
            if item is _CLOSED:
                return
            yield item  # type: ignore[misc]

    def get(self, timeout: float | None = None) -> ProgressEvent | None:
        """Next event, or None when the bus closed or ``timeout`` passed without one."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is _CLOSED:
            self._queue.put(_CLOSED)  # keep later calls returning None
            return None
        return item  # type: ignore[return-value]

    def close(self) -> None:
        self._sub.close()


class ProgressBus:
    """Thread-safe fan-out of progress events.

    Callbacks run synchronously on the publishing thread (a solver or worker thread),
    so they must be quick; a display should use :meth:`stream` and consume the queue on
    its own thread. A callback that raises is logged and does not disturb the build.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: tuple[Callable[[ProgressEvent], None], ...] = ()
        self._on_close: dict[Callable[[ProgressEvent], None], Callable[[], None]] = {}
        self._closed = False

    def subscribe(
        self,
        callback: Callable[[ProgressEvent], None],
        *,
        on_close: Callable[[], None] | None = None,
    ) -> ProgressSubscription:
        with self._lock:
            closed = self._closed
            if not closed:
                self._subscribers = (*self._subscribers, callback)
                if on_close is not None:
                    self._on_close[callback] = on_close
        if closed and on_close is not None:
            on_close()
        return ProgressSubscription(self, callback)

    def stream(self) -> ProgressStream:
        """A blocking iterator over events published from now on."""
        return ProgressStream(self)

    def _unsubscribe(self, callback: Callable[[ProgressEvent], None]) -> None:
        with self._lock:
            self._subscribers = tuple(s for s in self._subscribers if s is not callback)
            self._on_close.pop(callback, None)

    def publish(self, event: ProgressEvent) -> None:
        # Copy-on-write tuple: publishing never takes the lock.
        for sub in self._subscribers:
            try:
                sub(event)
            except Exception:
                _log.exception("progress subscriber failed on %r", event)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """End every stream; later events are still delivered to plain callbacks."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            closers = list(self._on_close.values())
            self._on_close.clear()
        for fn in closers:
            fn()


class ProgressWriter:
    """What an op handler gets to report logs and sub-progress for its vertex."""

    __slots__ = ("_emit", "_status_started", "digest", "name")

    def __init__(self, digest: str, name: str, emit: Callable[[ProgressEvent], None]) -> None:
        self.digest = digest
        self.name = name
        self._emit = emit
        self._status_started: dict[str, float] = {}

    def log(self, stream: int, data: bytes | str) -> None:
        """Write an output chunk (stream 1 = stdout, 2 = stderr)."""
        if isinstance(data, str):
            data = data.encode()
        if data:
            self._emit(VertexLog(self.digest, stream, data, time.time()))

    def status(
        self,
        id: str,
        current: int,
        total: int | None = None,
        *,
        name: str = "",
        completed: bool = False,
        started: float | None = None,
    ) -> None:
        """Report sub-progress ``id`` (e.g. a layer download: bytes so far of total);
        ``started`` when the work began before its first report."""
        now = time.time()
        started = self._status_started.setdefault(id, now if started is None else started)
        self._emit(
            VertexStatus(
                id, self.digest, name or id, current, total, now, started,
                now if completed else None,
            )
        )


class NullProgressWriter(ProgressWriter):
    """A writer that drops everything (for callers without a display)."""

    def __init__(self, digest: str = "", name: str = "") -> None:
        super().__init__(digest, name, lambda _e: None)
