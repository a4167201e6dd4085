"""Vertex jobs: the shared, memoised work of solving one vertex.

A job exists once per in-flight vertex digest (and cache mode) in a Solver, whichever
builds ask for it, so a vertex requested by two concurrent builds is keyed, loaded or
executed once and both await the same asyncio task. All job state is touched only on the
solver's event-loop thread; blocking worker calls run on the thread pool via
:meth:`JobRuntime.call`, and only those calls (plus progress emission) happen off-loop.

Per vertex the steps are: cache map -> input keys (content digests of
input results where the map asks for them) -> key; then, for each requested output,
cache lookup -> load, or on a miss: input results (in parallel) -> exec -> save.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from buildkit_py.errors import BuildError
from buildkit_py.solver.cache import CacheManager
from buildkit_py.solver.cache_key import KeyInput, edge_key, vertex_key
from buildkit_py.solver.cancel import Cancelled, CancelToken
from buildkit_py.solver.errors import VertexError, describe_exception
from buildkit_py.solver.explain import (
    InputView,
    explain_miss,
    no_cache_reason,
    step_slot,
    summarize,
)
from buildkit_py.solver.imports import CacheSource
from buildkit_py.solver.progress import (
    ProgressBus,
    ProgressEvent,
    ProgressWriter,
    VertexCached,
    VertexCacheMiss,
    VertexCompleted,
    VertexFailed,
    VertexLog,
    VertexStarted,
    VertexStatus,
)
from buildkit_py.solver.results import ResultRef, SharedResult
from buildkit_py.solver.vertex import Vertex
from buildkit_py.solver.worker import CacheMap, OpContext, OpHandler, Result, Worker

_log = logging.getLogger(__name__)
T = TypeVar("T")

LOG_TAIL_LINES = 10
_REPLAY_LOGS = 200  # log chunks kept for builds that join a running vertex late


@dataclass(eq=False)
class JobRuntime:
    """What jobs share: the loop, the thread pool, the worker and the cache."""

    loop: asyncio.AbstractEventLoop
    pool: Executor
    worker: Worker
    cache: CacheManager
    # Cache key -> job executing it: equal keys from different digests run once.
    executing: dict[str, Job] = field(default_factory=dict)

    async def call(
        self,
        fn: Callable[..., T],
        *args: Any,
        discard: Callable[[T], None] | None = None,
    ) -> T:
        """Run ``fn`` on the pool. On cancellation, wait for the thread to finish (it
        stops via the job's cancel token) so no work outlives its build, and hand any
        value it still produced to ``discard``."""
        fut = self.loop.run_in_executor(self.pool, fn, *args)
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            while not fut.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(fut)
            if not fut.cancelled() and fut.exception() is None and discard is not None:
                discard(fut.result())
            raise

    def share(self, result: Result) -> ResultRef:
        """Wrap a fresh worker result; it counts as in use until the last ref goes."""
        self.cache.mark_in_use(result.id)
        return SharedResult(result, self._freed).ref()

    def _freed(self, result: Result) -> None:
        self.cache.unmark_in_use(result.id)


async def run_all(coros: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Await coroutines concurrently; on the first error cancel the rest, wait for them,
    and raise that error (a real failure wins over a cancellation)."""
    if not coros:
        return []
    if len(coros) == 1:
        return [await coros[0]]
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        await _cancel_and_wait(tasks)
        raise
    failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception() is not None]
    if failed:
        await _cancel_and_wait(tasks)
        errors = [t.exception() for t in failed]
        real = [e for e in errors if not isinstance(e, Cancelled)]
        raise (real or errors)[0]  # type: ignore[misc]
    return [t.result() for t in tasks]


async def _cancel_and_wait(tasks: Sequence[asyncio.Future[Any]]) -> None:
    for t in tasks:
        t.cancel()
    while not all(t.done() for t in tasks):
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait(tasks)
    for t in tasks:  # mark exceptions retrieved
        if not t.cancelled():
            t.exception()


async def _await_shared(task: asyncio.Future[T]) -> T:
    # Shield: a build that stops waiting must not cancel work other builds share.
    if task.done():
        return task.result()
    return await asyncio.shield(task)


class Job:
    """The memoised solving of one vertex, shared by every build that needs it."""

    def __init__(
        self,
        rt: JobRuntime,
        vertex: Vertex,
        job_id: str,
        ignore_cache: bool,
        inputs: list[Job],
    ) -> None:
        self.rt = rt
        self.vertex = vertex
        self.id = job_id
        self.ignore_cache = ignore_cache
        self.inputs = inputs
        self.input_digests = tuple(e.vertex.digest for e in vertex.inputs)  # for progress
        self.name = vertex.name or vertex.digest[:19]
        self.solves: set[object] = set()
        # Sessions of the attached builds; swapped whole so worker threads read safely.
        self.sessions: tuple[object, ...] = ()
        # Imported caches (--cache-from) of the attached builds, consulted after the
        # local records.
        self.imports: tuple[CacheSource, ...] = ()
        self.status = "pending"  # -> keyed -> cached | ran
        self.token = CancelToken()
        self.cachemap: CacheMap | None = None
        # Why the vertex ran (solver/explain.py); set by the build that made the job
        # whether its whole build ignores the cache (--no-cache) or only this vertex.
        self.build_no_cache = False
        self.miss_reason: str | None = None
        self.key_inputs: list[KeyInput] = []
        self.edge_keys: dict[int, str] = {}
        self.owned: list[ResultRef] = []
        self._handler: OpHandler | None = None
        self._ctx: OpContext | None = None
        self._key_task: asyncio.Task[str] | None = None
        self._edge_tasks: dict[int, asyncio.Task[ResultRef]] = {}
        self._exec_task: asyncio.Task[list[ResultRef]] | None = None
        self._cached_sent = False
        # When VertexStarted went out: by the first run, or earlier by the first log or
        # status while keying (a Git or HTTP source resolving), as BuildKit shows them.
        self.announced_at: float | None = None
        # Progress fan-out; written from worker threads, so guarded.
        self._plock = threading.Lock()
        self._buses: tuple[ProgressBus, ...] = ()
        self._history: list[ProgressEvent] = []
        self._replay_logs: deque[VertexLog] = deque(maxlen=_REPLAY_LOGS)
        self._log_tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self._partial: dict[int, bytes] = {}

    # ------------------------------------------------------------ progress

    def attach_bus(self, bus: ProgressBus) -> None:
        with self._plock:
            if bus in self._buses:
                return
            self._buses = (*self._buses, bus)
            replay = [*self._history, *self._replay_logs]
        replay.sort(key=_event_time)
        for ev in replay:
            bus.publish(ev)

    def detach_bus(self, bus: ProgressBus) -> None:
        with self._plock:
            self._buses = tuple(b for b in self._buses if b is not bus)

    def emit(self, ev: ProgressEvent) -> None:
        events = [ev]
        with self._plock:
            if isinstance(ev, VertexStarted):
                if self.announced_at is not None:
                    return  # already shown as started (output while keying)
                self.announced_at = ev.started
            elif isinstance(ev, VertexLog | VertexStatus) and self.announced_at is None:
                self.announced_at = time.time()
                events.insert(0, VertexStarted(self.vertex.digest, self.name,
                                               self.announced_at, self.input_digests))
            for e in events:
                if isinstance(e, VertexLog):
                    self._replay_logs.append(e)
                    self._track_lines(e)
                elif not hasattr(e, "id"):  # vertex-level events, not sub-status
                    self._history.append(e)
            buses = self._buses
        for bus in buses:
            for e in events:
                bus.publish(e)

    def _track_lines(self, ev: VertexLog) -> None:
        data = self._partial.pop(ev.stream, b"") + ev.data
        *lines, rest = data.split(b"\n")
        for line in lines:
            self._log_tail.append(line.decode("utf-8", "replace").rstrip("\r"))
        if rest:
            self._partial[ev.stream] = rest[-4096:]

    def log_tail(self) -> list[str]:
        with self._plock:
            tail = list(self._log_tail)
            tail.extend(p.decode("utf-8", "replace") for p in self._partial.values() if p)
        return tail[-LOG_TAIL_LINES:]

    # ------------------------------------------------------------ handler plumbing

    @property
    def handler(self) -> OpHandler:
        if self._handler is None:
            self._handler = self.rt.worker.resolve_op(self.vertex)
        return self._handler

    @property
    def ctx(self) -> OpContext:
        if self._ctx is None:
            writer = ProgressWriter(self.vertex.digest, self.name, self.emit)
            self._ctx = OpContext(self.vertex, self.token, writer, lambda: self.sessions)
        return self._ctx

    def failure(self, exc: BaseException, started: float | None = None) -> BuildError:
        """Turn an exception from a handler call into the error builds see (and report it)."""
        now = time.time()
        if self.token.cancelled or isinstance(exc, Cancelled):
            self.emit(VertexFailed(self.vertex.digest, self.name, started or now, now,
                                   "cancelled", cancelled=True))
            return exc if isinstance(exc, Cancelled) else Cancelled()
        detail = describe_exception(exc)
        own = exc if isinstance(exc, BuildError) else None
        tail = self.log_tail() or (own.log_tail if own else [])
        location = self.vertex.location or (own.location if own else None)
        self.emit(VertexFailed(self.vertex.digest, self.name, started or now, now, detail))
        err = VertexError(
            detail,
            digest=self.vertex.digest,
            vertex_name=self.name,
            location=location,
            log_tail=tail,
            hint=own.hint if own else None,
        )
        err.__cause__ = exc
        return err

    def _guarded(self, fn: Callable[..., T]) -> Callable[..., T]:
        def call(*args: Any) -> T:
            self.token.raise_if_cancelled()
            try:
                return fn(*args)
            except BaseException as exc:
                raise self.failure(exc) from exc

        return call

    # ------------------------------------------------------------ keys

    async def key(self) -> str:
        if self._key_task is None:
            self._key_task = self.rt.loop.create_task(self._compute_key())
        return await _await_shared(self._key_task)

    def computed_key(self) -> str | None:
        """The vertex key if it has been computed successfully."""
        t = self._key_task
        if t is None or not t.done() or t.cancelled() or t.exception() is not None:
            return None
        return t.result()

    async def edge_key(self, index: int) -> str:
        """The key consumers combine into theirs.

        As in BuildKit, a vertex that ignores the cache offers its key only once it has
        executed: it always runs when something downstream is needed, even if the
        consumer then hits the cache.
        """
        if self.ignore_cache:
            await self.edge_result(index)
        return await self._edge_key(index)

    async def _edge_key(self, index: int) -> str:
        k = self.edge_keys.get(index)
        if k is None:
            k = edge_key(await self.key(), index)
            self.edge_keys[index] = k
        return k

    async def _compute_key(self) -> str:
        try:
            handler = self.handler  # e.g. an unsupported op kind fails here
        except Exception as exc:
            raise self.failure(exc) from exc
        if getattr(handler, "cache_map_is_cheap", False):
            cm = self._guarded(handler.cache_map)(self.ctx)  # pure hashing: no thread hop
        else:
            cm = await self.rt.call(self._guarded(handler.cache_map), self.ctx)
        n = len(self.vertex.inputs)
        if cm.deps and len(cm.deps) != n:
            raise self.failure(RuntimeError(
                f"worker cache map has {len(cm.deps)} input entries for {n} inputs"))
        self.cachemap = cm
        self.key_inputs = await run_all([self._key_input(i, cm) for i in range(n)])
        if self.status == "pending":
            self.status = "keyed"
        return vertex_key(cm.digest, self.key_inputs)

    async def _key_input(self, i: int, cm: CacheMap) -> KeyInput:
        edge, job = self.vertex.inputs[i], self.inputs[i]
        dep = cm.deps[i] if cm.deps else None
        selectors = dep.selectors if dep is not None else ()
        if dep is None or dep.compute_digest is None:
            return KeyInput(await job.edge_key(edge.index), selectors)
        # Content-based ("slow") key: the input must be solved first, unless a record
        # (local, else of an imported cache) kept the checksum a key took of the input's
        # result under the input's own key: then its layers are not even loaded. An input
        # that ran in this build is checksummed as it is now (a re-run may differ).
        source = await job.edge_key(edge.index)
        if not job.ignore_cache and job.status != "ran":
            known = self.rt.cache.checksum(source, selectors)
            for imp in self.imports:
                if known is not None:
                    break
                known = imp.checksum(source, selectors)
                if known is not None:  # the next build needs no import for it
                    self.rt.cache.remember_checksum(source, selectors, known)
            if known is not None:
                return KeyInput(known, selectors, content=True, source=source)
        ref = await job.edge_result(edge.index)
        digest = await self.rt.call(self._guarded(dep.compute_digest), ref.result, selectors)
        return KeyInput(digest, selectors, content=True, source=source)

    # ------------------------------------------------------------ results

    async def edge_result(self, index: int) -> ResultRef:
        """A result for output ``index``: from the cache when allowed, else by running."""
        task = self._edge_tasks.get(index)
        if task is None:
            task = self.rt.loop.create_task(self._edge_result(index))
            self._edge_tasks[index] = task
        return await _await_shared(task)

    async def _edge_result(self, index: int) -> ResultRef:
        ekey = await self._edge_key(index)
        if not self.ignore_cache and self.status != "ran":
            ref = await self._load_cached(ekey)
            if ref is not None:
                return ref
        refs = await self._exec_results()
        if index >= len(refs):
            raise self.failure(RuntimeError(
                f"op produced {len(refs)} outputs, output {index} was requested"))
        return refs[index]

    async def _load_cached(self, ekey: str) -> ResultRef | None:
        result: Result | None = None
        rec = self.rt.cache.load(ekey)
        if rec is not None:
            result = await self.rt.call(
                self._guarded(self.rt.worker.load_result), rec.result_id, discard=_release
            )
            if result is None:  # snapshot gone: forget the record and run again
                self.rt.cache.delete(ekey)
        if result is None:
            result = await self._load_imported(ekey)
        if result is None:
            return None
        ref = self.rt.share(result)
        self.owned.append(ref)
        if self.status != "ran":
            self.status = "cached"
        self.send_cached()
        return ref

    async def _load_imported(self, ekey: str) -> Result | None:
        """The result of ``ekey`` from the first import that has it, materialized and
        then recorded locally (the next build hits without the import)."""
        for imp in self.imports:
            if ekey not in imp.existing([ekey]):
                continue
            result = await self.rt.call(self._guarded(imp.load), ekey, discard=_release)
            if result is None:
                continue
            cm = self.cachemap
            self.rt.cache.save(ekey, result, description=self.name,
                               cachemap_digest=cm.digest if cm else "",
                               output=next((i for i, k in self.edge_keys.items()
                                            if k == ekey), 0),
                               links=self.key_inputs)
            return result
        return None

    def send_cached(self) -> None:
        if not self._cached_sent:
            self._cached_sent = True
            self._send_inputs_cached()
            self.emit(VertexCached(self.vertex.digest, self.name, time.time(),
                                   self.input_digests))

    def _send_inputs_cached(self) -> None:
        """Announce the inputs this hit makes cached (only keyed, their records exist)
        before the hit itself, so progress lists cached steps inputs first, as BuildKit
        does, not the last step first (the solver's end would announce them anyway)."""
        for job in self.inputs:
            if job._cached_sent or job.status != "keyed" or job.ignore_cache:
                continue
            keys = list(job.edge_keys.values())
            if not keys:
                continue
            have = self.rt.cache.existing(keys)
            for imp in job.imports:
                have |= imp.existing([k for k in keys if k not in have])
            if all(k in have for k in keys):
                job.send_cached()

    async def _exec_results(self) -> list[ResultRef]:
        if self._exec_task is None:
            self._exec_task = self.rt.loop.create_task(self._execute())
        return await _await_shared(self._exec_task)

    async def _execute(self) -> list[ResultRef]:
        vkey = await self.key()
        other = self.rt.executing.get(vkey)
        if other is not None and other is not self:
            refs = await self._join(other)
            if refs is not None:
                return refs
        self.rt.executing[vkey] = self
        try:
            inputs = await run_all(
                [job.edge_result(e.index) for e, job in zip(self.vertex.inputs, self.inputs,
                                                            strict=True)]
            )
            refs = await self.rt.call(
                self._run, vkey, [r.result for r in inputs], discard=_release_all
            )
        finally:
            if self.rt.executing.get(vkey) is self:
                del self.rt.executing[vkey]
        self.owned.extend(refs)
        self.status = "ran"
        return refs

    async def _join(self, other: Job) -> list[ResultRef] | None:
        """Share the execution of another vertex with an equal cache key."""
        started = time.time()
        self.emit(VertexStarted(self.vertex.digest, self.name, started, self.input_digests))
        try:
            theirs = await other._exec_results()
        except (asyncio.CancelledError, Cancelled):
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            return None  # the other builds gave up on it: run it ourselves
        except BuildError as exc:
            self.emit(VertexFailed(self.vertex.digest, self.name, started, time.time(),
                                   describe_exception(exc)))
            raise
        refs = [r.clone() for r in theirs]
        self.owned.extend(refs)
        self.status = "ran"
        self.emit(VertexCompleted(self.vertex.digest, self.name, started, time.time()))
        return refs

    def _run(self, vkey: str, inputs: list[Result]) -> list[ResultRef]:
        """Worker thread: execute the op and save its outputs to the cache."""
        self.token.raise_if_cancelled()
        started = time.time()
        self.emit(VertexStarted(self.vertex.digest, self.name, started, self.input_digests))
        self._explain_miss(vkey)
        handler = self.handler
        unregister = self.token.add_callback(handler.cancel)
        try:
            raw = handler.exec(self.ctx, inputs)
        except BaseException as exc:
            raise self.failure(exc, started) from exc
        finally:
            unregister()
        refs = [self.rt.share(r) for r in raw]
        try:
            cm = self.cachemap
            assert cm is not None  # the key (and so the map) precedes execution
            for i, ref in enumerate(refs):
                self.rt.cache.save(
                    edge_key(vkey, i), ref.result, description=self.name,
                    cachemap_digest=cm.digest, output=i, links=self.key_inputs,
                )
        except BaseException as exc:
            _release_all(refs)
            raise self.failure(exc, started) from exc
        if refs:
            self._remember_step(vkey)
        self.emit(VertexCompleted(self.vertex.digest, self.name, started, time.time()))
        return refs

    # ------------------------------------------------------------ why it ran

    def _explain_miss(self, vkey: str) -> None:
        """Worker thread, as the op starts: say why it was not cached (never fails it)."""
        reason: str | None
        try:
            handler = self.handler
            if self.ignore_cache and not hasattr(handler, "miss_reason"):
                reason = no_cache_reason(self.vertex, self.build_no_cache)
            else:
                cm = self.cachemap
                assert cm is not None
                views = [InputView(j.name, j.status == "ran", j.handler) for j in self.inputs]
                reason = explain_miss(self.rt.cache, step_slot(self.vertex), vkey, cm.digest,
                                      self.key_inputs, views, handler, self.ctx)
        except Exception:
            _log.debug("explaining the miss of %s failed", self.name, exc_info=True)
            return
        self.miss_reason = reason
        if reason:
            self.emit(VertexCacheMiss(self.vertex.digest, self.name, reason, time.time()))

    def _remember_step(self, vkey: str) -> None:
        """After a run: the step's slot now points at this key (for the next miss)."""
        handler = self.handler
        if hasattr(handler, "miss_reason"):  # never cached by design: nothing to compare
            return
        try:
            self.rt.cache.remember_step(step_slot(self.vertex), vkey, edge_key(vkey, 0),
                                        summarize(handler, self.ctx))
        except Exception:
            _log.debug("remembering step %s failed", self.name, exc_info=True)

    # ------------------------------------------------------------ teardown

    def cancel(self) -> list[asyncio.Task[Any]]:
        """Stop everything this job runs; returns the tasks still to wait for."""
        self.token.cancel("build cancelled")  # also calls handler.cancel() if executing
        tasks: list[asyncio.Task[Any]] = [
            t for t in (self._key_task, self._exec_task, *self._edge_tasks.values())
            if t is not None and not t.done()
        ]
        for t in tasks:
            t.cancel()
        return tasks

    def release(self) -> None:
        """Drop the results this job holds (builds hold their own clones)."""
        owned, self.owned = self.owned, []
        _release_all(owned)
        for t in (self._key_task, self._exec_task, *self._edge_tasks.values()):
            if t is not None and t.done() and not t.cancelled():
                t.exception()  # retrieved: failures were reported through the builds


def _release(result: Result | None) -> None:
    if result is not None:
        result.release()


def _release_all(refs: Sequence[ResultRef]) -> None:
    for r in refs:
        try:
            r.release()
        except Exception:
            _log.exception("releasing result %s failed", r.id)


def _event_time(ev: ProgressEvent) -> float:
    for attr in ("timestamp", "completed", "started"):
        v = getattr(ev, attr, None)
        if isinstance(v, float):
            return v
    return 0.0
