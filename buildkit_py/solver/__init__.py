"""The solver: DAG scheduling, dedup, cache keys, cache records and progress events.

Public API::

    cache = CacheManager(state_dir)
    with Solver(worker, cache, max_parallelism=None) as solver:
        res = solver.solve(definition, progress=bus, no_cache=False, cancel=token)
        ...use res.ref...; res.release()

``worker`` implements :class:`buildkit_py.solver.worker.Worker`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from buildkit_py.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from buildkit_py.solver.cache import CacheManager, CacheRecord, CacheUsage, PrunedResult
    from buildkit_py.solver.cancel import Cancelled, CancelToken
    from buildkit_py.solver.errors import VertexError
    from buildkit_py.solver.progress import ProgressBus, ProgressEvent, ProgressWriter
    from buildkit_py.solver.results import ResultRef
    from buildkit_py.solver.solver import Solver, SolveResult, VertexOutcome
    from buildkit_py.solver.vertex import BuildGraph, Edge, Vertex, make_vertex
    from buildkit_py.solver.worker import (
        CacheMap,
        CacheMapDep,
        OpContext,
        OpHandler,
        Result,
        Worker,
    )

# Exported name -> defining module, imported on first access: importing one submodule
# (e.g. ``progress`` for its event types) must not pull in the whole solver.
_LAZY: dict[str, str] = {
    "BuildGraph": "buildkit_py.solver.vertex",
    "CacheManager": "buildkit_py.solver.cache",
    "CacheMap": "buildkit_py.solver.worker",
    "CacheMapDep": "buildkit_py.solver.worker",
    "CacheRecord": "buildkit_py.solver.cache",
    "CacheUsage": "buildkit_py.solver.cache",
    "CancelToken": "buildkit_py.solver.cancel",
    "Cancelled": "buildkit_py.solver.cancel",
    "Edge": "buildkit_py.solver.vertex",
    "OpContext": "buildkit_py.solver.worker",
    "OpHandler": "buildkit_py.solver.worker",
    "ProgressBus": "buildkit_py.solver.progress",
    "ProgressEvent": "buildkit_py.solver.progress",
    "ProgressWriter": "buildkit_py.solver.progress",
    "PrunedResult": "buildkit_py.solver.cache",
    "Result": "buildkit_py.solver.worker",
    "ResultRef": "buildkit_py.solver.results",
    "SolveResult": "buildkit_py.solver.solver",
    "Solver": "buildkit_py.solver.solver",
    "Vertex": "buildkit_py.solver.vertex",
    "VertexError": "buildkit_py.solver.errors",
    "VertexOutcome": "buildkit_py.solver.solver",
    "Worker": "buildkit_py.solver.worker",
    "make_vertex": "buildkit_py.solver.vertex",
}

__all__ = [
    "BuildGraph",
    "CacheManager",
    "CacheMap",
    "CacheMapDep",
    "CacheRecord",
    "CacheUsage",
    "CancelToken",
    "Cancelled",
    "Edge",
    "OpContext",
    "OpHandler",
    "ProgressBus",
    "ProgressEvent",
    "ProgressWriter",
    "PrunedResult",
    "Result",
    "ResultRef",
    "SolveResult",
    "Solver",
    "Vertex",
    "VertexError",
    "VertexOutcome",
    "Worker",
    "make_vertex",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


