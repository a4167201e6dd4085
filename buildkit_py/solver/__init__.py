"""The solver: DAG scheduling, dedup, cache keys, cache records and progress events.

Public API::

    cache = CacheManager(state_dir)
    with Solver(worker, cache, max_parallelism=None) as solver:
        res = solver.solve(definition, progress=bus, no_cache=False, cancel=token)
        ...use res.ref...; res.release()

``worker`` implements :class:`buildkit_py.solver.worker.Worker`.
"""

from buildkit_py.solver.cache import CacheManager, CacheRecord, CacheUsage, PrunedResult
from buildkit_py.solver.cancel import Cancelled, CancelToken
from buildkit_py.solver.errors import VertexError
from buildkit_py.solver.progress import ProgressBus, ProgressEvent, ProgressWriter
from buildkit_py.solver.results import ResultRef
from buildkit_py.solver.solver import Solver, SolveResult, VertexOutcome
from buildkit_py.solver.vertex import BuildGraph, Edge, Vertex, make_vertex
from buildkit_py.solver.worker import CacheMap, CacheMapDep, OpContext, OpHandler, Result, Worker

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
