"""The solver: turns a build graph into a result, reusing cache and shared work.

Concurrency model: one asyncio event loop per Solver, on its own daemon thread,
orchestrates every build; blocking worker calls (cache maps, exec, loading results,
content checksums) run on a ThreadPoolExecutor of ``max_parallelism`` threads. Why:
ops shell out to runtimes and do file I/O, which threads handle well, while the
bookkeeping (dedup, waiting on inputs, first-failure cancellation) is easiest to get
right as coroutines on a single thread: no locks around the job table, and a waiting
vertex costs no thread, so a deep graph can never starve the pool by blocking threads on
their inputs. Cache-record lookups are plain sqlite reads and run inline on the loop.

``solve()`` may be called from any number of threads at once (the daemon serves several
clients): all builds share the loop, the job table, and therefore in-flight vertices.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from buildkit_py.solver.cache import CacheManager
from buildkit_py.solver.cancel import Cancelled, CancelToken
from buildkit_py.solver.imports import CacheSource
from buildkit_py.solver.jobs import Job, JobRuntime
from buildkit_py.solver.llb_adapter import graph_from_definition
from buildkit_py.solver.progress import ProgressBus, VertexCompleted
from buildkit_py.solver.results import ResultRef
from buildkit_py.solver.vertex import BuildGraph, Edge, Vertex, graph_of
from buildkit_py.solver.worker import Worker

# How long an interrupted solve waits for its steps to stop (containers get killed).
CANCEL_GRACE_SECONDS = 30.0

VertexState = Literal["ran", "cached", "skipped"]


@dataclass(frozen=True, slots=True)
class VertexOutcome:
    """What happened to one vertex in a solve.

    ``ran``: executed (by this build or shared with a concurrent one); ``cached``: served
    from a cache record (loaded, or not even needed because a later vertex hit);
    ``skipped``: not needed and not in the cache.
    """

    digest: str
    name: str
    state: VertexState
    key: str | None
    reason: str | None = None  # why it ran (solver/explain.py), for a vertex that ran


@dataclass(slots=True)
class SolveResult:
    """The build's result (``ref``, None for an empty graph) and per-vertex outcomes.

    The caller owns ``ref`` and must :meth:`release` it when done with it.
    """

    ref: ResultRef | None
    vertices: dict[str, VertexOutcome]
    # vertex digest -> {output index: edge key} of every keyed vertex (what a cache
    # exporter looks records up by)
    edge_keys: dict[str, dict[int, str]] = field(default_factory=dict)

    @property
    def ran(self) -> list[str]:
        return [d for d, o in self.vertices.items() if o.state == "ran"]

    @property
    def cached(self) -> list[str]:
        return [d for d, o in self.vertices.items() if o.state == "cached"]

    def release(self) -> None:
        if self.ref is not None:
            self.ref.release()


class _Solve:
    """One build's view: which jobs it holds and where its progress goes."""

    __slots__ = ("bus", "by_digest", "graph", "imports", "jobs", "need_head", "no_cache",
                 "session", "task")

    def __init__(
        self, graph: BuildGraph, bus: ProgressBus, no_cache: bool, session: object | None,
        imports: tuple[CacheSource, ...] = (), need_head: bool = True,
    ) -> None:
        self.graph = graph
        self.need_head = need_head
        self.bus = bus
        self.no_cache = no_cache
        self.session = session
        self.imports = imports
        self.by_digest: dict[str, Job] = {}
        self.jobs: set[Job] = set()
        self.task: asyncio.Task[SolveResult] | None = None


def load_graph(definition: Any) -> BuildGraph:
    """Accept a BuildGraph, a head Edge/Vertex, or an LLB Definition (or its bytes)."""
    if isinstance(definition, BuildGraph):
        return definition
    if definition is None or isinstance(definition, Edge | Vertex):
        return graph_of(definition)
    return graph_from_definition(definition)


class Solver:
    """Solves build graphs against a worker and a persistent cache.

    ``max_parallelism`` bounds concurrent worker calls (default ``os.cpu_count()``).
    Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self, worker: Worker, cache: CacheManager, max_parallelism: int | None = None
    ) -> None:
        self.worker = worker
        self.cache = cache
        self.max_parallelism = max(1, max_parallelism or os.cpu_count() or 1)
        self._loop = asyncio.new_event_loop()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            self.max_parallelism, thread_name_prefix="bkpy-solver"
        )
        self._rt = JobRuntime(self._loop, self._pool, worker, cache)
        self._jobs: dict[str, Job] = {}
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="bkpy-solver-loop", daemon=True
        )
        self._thread.start()
        self._closed = False

    def __enter__(self) -> Solver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the loop and the thread pool (call once no solve is running)."""
        if self._closed:
            return
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        self._pool.shutdown(wait=True)

    # ------------------------------------------------------------ public entry

    def solve(
        self,
        definition: Any,
        *,
        progress: ProgressBus | None = None,
        no_cache: bool = False,
        cancel: CancelToken | None = None,
        session: object | None = None,
        imports: Sequence[CacheSource] = (),
        need_head: bool = True,
    ) -> SolveResult:
        """Build ``definition`` and return its result (blocking; thread-safe).

        ``no_cache`` ignores every cache lookup (results are still saved); a vertex's own
        ``ignore_cache`` does the same for that vertex. ``session`` is opaque to the
        solver and reaches op handlers through ``OpContext.sessions()``. ``imports`` are
        imported caches (``solver.imports.CacheSource``) looked up after the local
        records, for this build's vertices (and those it shares). ``need_head=False``
        (nothing will read the result) lets a head found only in an import stay there:
        the result is then None and nothing is downloaded. Raises a
        BuildError naming the first vertex that failed, or :class:`Cancelled` if
        ``cancel`` fired.
        """
        if self._closed:
            raise RuntimeError("solver is closed")
        if threading.current_thread() is self._thread:
            raise RuntimeError("solve() called from the solver's own loop")
        graph = load_graph(definition)
        solve = _Solve(graph, progress or ProgressBus(), no_cache, session, tuple(imports),
                       need_head)
        done: concurrent.futures.Future[SolveResult] = concurrent.futures.Future()

        def start() -> None:
            task = self._loop.create_task(self._run(solve))
            solve.task = task
            task.add_done_callback(lambda t: _settle(t, done))

        self._loop.call_soon_threadsafe(start)
        unregister = None
        if cancel is not None:

            def on_cancel() -> None:
                self._loop.call_soon_threadsafe(_cancel_task, solve)

            unregister = cancel.add_callback(on_cancel)
        try:
            return done.result()
        except BaseException:
            # Interrupted while waiting (Ctrl-C in this thread): stop this solve's running
            # steps (containers included) before unwinding, or close() would wait for them.
            if not done.done():
                self._loop.call_soon_threadsafe(_cancel_task, solve)
                with contextlib.suppress(BaseException):
                    done.result(timeout=CANCEL_GRACE_SECONDS)
            raise
        finally:
            if unregister is not None:
                unregister()

    # ------------------------------------------------------------ loop side

    async def _run(self, solve: _Solve) -> SolveResult:
        self._attach(solve)
        try:
            head = solve.graph.head
            ref = None
            if head is not None and not await self._head_only_imported(solve):
                ref = (await solve.by_digest[head.vertex.digest].edge_result(head.index)).clone()
            try:
                return SolveResult(ref, self._outcomes(solve),
                                   {d: dict(j.edge_keys) for d, j in solve.by_digest.items()
                                    if j.edge_keys})
            except BaseException:
                if ref is not None:
                    ref.release()
                raise
        finally:
            await self._detach(solve)

    async def _head_only_imported(self, solve: _Solve) -> bool:
        """Whether an unneeded head can stay in an imported cache: its key is there and
        not in the local records (a local hit is loaded: cheap, and proves the snapshot
        still exists). BuildKit is as lazy: a cached build with no output pulls nothing."""
        head = solve.graph.head
        if solve.need_head or not solve.imports or head is None:
            return False
        job = solve.by_digest[head.vertex.digest]
        if job.ignore_cache:
            return False
        key = await job.edge_key(head.index)
        if self.cache.exists(key):
            return False
        return any(key in imp.existing([key]) for imp in solve.imports)

    def _attach(self, solve: _Solve) -> None:
        graph = solve.graph
        for v in graph.vertices():  # inputs first, so input jobs exist
            ignore = solve.no_cache or v.ignore_cache
            jid = v.digest + ("#nocache" if ignore else "")
            # A build that may use the cache can share a running no-cache job (its result
            # is as valid); the reverse would hand cached results to a no-cache build.
            job = self._jobs.get(jid) if ignore else (
                self._jobs.get(jid + "#nocache") or self._jobs.get(jid))
            if job is None:
                inputs = [solve.by_digest[e.vertex.digest] for e in v.inputs]
                job = Job(self._rt, v, jid, ignore, inputs)
                job.build_no_cache = solve.no_cache
                self._jobs[jid] = job
            solve.by_digest[v.digest] = job
        # A job found in the table may have been created by another build with other
        # input jobs; hold those too, so they live as long as this build needs them.
        stack = list(solve.by_digest.values())
        while stack:
            job = stack.pop()
            if job in solve.jobs:
                continue
            solve.jobs.add(job)
            job.solves.add(solve)
            if solve.session is not None:
                job.sessions = (*job.sessions, solve.session)
            if solve.imports:
                job.imports = (*job.imports, *solve.imports)
            job.attach_bus(solve.bus)
            stack.extend(job.inputs)

    async def _detach(self, solve: _Solve) -> None:
        orphans: list[Job] = []
        for job in solve.jobs:
            job.solves.discard(solve)
            if solve.session is not None:
                job.sessions = _without(job.sessions, solve.session)
            for imp in solve.imports:
                job.imports = _without(job.imports, imp)  # type: ignore[assignment]
            if job.solves:
                job.detach_bus(solve.bus)
                continue
            orphans.append(job)
            if self._jobs.get(job.id) is job:
                del self._jobs[job.id]
        pending: list[asyncio.Task[Any]] = []
        for job in orphans:
            pending.extend(job.cancel())
        # Wait for cancelled work (threads included) so nothing outlives the build; the
        # build's display still hears which vertices were cancelled.
        while pending and not all(t.done() for t in pending):
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait(pending)
        for job in orphans:
            job.detach_bus(solve.bus)
            job.release()

    def _outcomes(self, solve: _Solve) -> dict[str, VertexOutcome]:
        # Vertices upstream of a hit were only keyed (laziness); they count as cached
        # when their records exist. One query for all of them.
        keyed = [j for j in solve.by_digest.values()
                 if j.status == "keyed" and not j.ignore_cache and j.edge_keys]
        keyed_set = set(keyed)
        wanted = [k for j in keyed for k in j.edge_keys.values()]
        have = self.cache.existing(wanted)
        for imp in solve.imports:  # an imported cache's record counts too
            have |= imp.existing([k for k in wanted if k not in have])
        out: dict[str, VertexOutcome] = {}
        for digest, job in solve.by_digest.items():
            state: VertexState = "skipped"
            if job.status == "ran":
                state = "ran"
            elif job.status == "cached":
                state = "cached"
            elif job in keyed_set and all(k in have for k in job.edge_keys.values()):
                job.send_cached()
                state = "cached"
            elif job.announced_at is not None:  # shown while keying, then not needed
                job.emit(VertexCompleted(digest, job.name, job.announced_at, time.time()))
            out[digest] = VertexOutcome(digest, job.name, state, job.computed_key(),
                                        job.miss_reason if state == "ran" else None)
        return out


def _without(items: tuple[object, ...], item: object) -> tuple[object, ...]:
    i = next((n for n, x in enumerate(items) if x is item), None)
    return items if i is None else items[:i] + items[i + 1:]


def _cancel_task(solve: _Solve) -> None:
    if solve.task is not None:
        solve.task.cancel()


def _settle(task: asyncio.Task[SolveResult], done: concurrent.futures.Future[SolveResult]) -> None:
    if task.cancelled():
        done.set_exception(Cancelled())
        return
    exc = task.exception()
    if exc is not None:
        done.set_exception(exc)
    else:
        done.set_result(task.result())
