"""Solver overhead per cached vertex on a 200-vertex graph.

An in-memory worker (no I/O in ops) isolates the solver's own cost: graph loading, cache
maps on the thread pool, key hashing, sqlite lookups, progress events, bookkeeping.
Scenarios, each on a warm cache (every vertex built once before timing):

* ``cached rebuild``: the usual no-change rebuild; the head hits, upstream vertices are
  keyed and reported CACHED but never loaded.
* ``all loaded``: every vertex consumes its inputs by content, so every cached result is
  loaded and checksummed (the worst case for a cached graph).

Run: ``python3 bench/solver_bench.py [--vertices 200] [--rounds 20]``. Goal: < 1 ms/vertex.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from buildkit_py.solver import (
    CacheManager,
    CacheMap,
    CacheMapDep,
    OpContext,
    ProgressBus,
    Result,
    Solver,
    Vertex,
    make_vertex,
)


class MemResult:
    __slots__ = ("id",)
    size = 0

    def __init__(self, rid: str) -> None:
        self.id = rid

    def release(self) -> None:
        pass


class MemHandler:
    cache_map_is_cheap = True  # like exec/file ops: the map only hashes the op

    def __init__(self, vertex: Vertex) -> None:
        self.vertex = vertex

    def cache_map(self, ctx: OpContext) -> CacheMap:
        digest = "sha256:" + hashlib.sha256(
            json.dumps(self.vertex.op, sort_keys=True).encode()).hexdigest()
        if self.vertex.op.get("content"):
            dep = CacheMapDep(("/",), lambda r, sels: "sha256:" + hashlib.sha256(
                r.id.encode()).hexdigest())
            return CacheMap(digest, tuple(dep for _ in self.vertex.inputs))
        return CacheMap(digest)

    def exec(self, ctx: OpContext, inputs: Sequence[Result]) -> list[Result]:
        return [MemResult(self.vertex.digest)]

    def cancel(self) -> None:
        pass


class MemWorker:
    def resolve_op(self, vertex: Vertex) -> MemHandler:
        return MemHandler(vertex)

    def load_result(self, result_id: str) -> MemResult:
        return MemResult(result_id)


def build_graph(n: int, content: bool) -> Vertex:
    """Layers of 10 vertices, each reading two of the previous layer, and one head."""
    width = 10
    layers: list[list[Vertex]] = []
    made = 0
    while made < n - 1:
        prev = layers[-1] if layers else []
        layer = []
        for i in range(min(width, n - 1 - made)):
            inputs = [prev[i % len(prev)], prev[(i + 1) % len(prev)]] if prev else []
            op: dict[str, Any] = {"n": made, "content": content}
            layer.append(make_vertex(op, inputs, name=f"v{made}"))
            made += 1
        layers.append(layer)
    return make_vertex({"head": True, "content": content}, layers[-1], name="head")


def measure(
    n: int, rounds: int, content: bool, parallelism: int | None
) -> tuple[float, float]:
    """Median wall and CPU (all threads) milliseconds per vertex of a cached solve."""
    with tempfile.TemporaryDirectory() as root:
        cache = CacheManager(root)
        with Solver(MemWorker(), cache, max_parallelism=parallelism) as solver:
            solver.solve(build_graph(n, content)).release()  # warm the cache
            times, cpu = [], []
            for _ in range(rounds):
                head = build_graph(n, content)  # fresh objects: loading is part of it
                bus = ProgressBus()
                bus.subscribe(lambda e: None)
                c0, t0 = time.process_time(), time.perf_counter()
                res = solver.solve(head, progress=bus)
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                assert not res.ran, "benchmark graph should be fully cached"
                res.release()
        cache.close()
    return statistics.median(times) / n * 1000, statistics.median(cpu) / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vertices", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--parallelism", type=int, default=None)
    args = ap.parse_args()
    for label, content in (("cached rebuild", False), ("all loaded", True)):
        wall, cpu = measure(args.vertices, args.rounds, content, args.parallelism)
        verdict = "ok" if wall < 1.0 else "OVER GOAL"
        print(f"{label:15s} {args.vertices} vertices: {wall:.3f} ms/vertex wall, "
              f"{cpu:.3f} ms/vertex CPU (median of {args.rounds}; goal < 1 ms) {verdict}")


if __name__ == "__main__":
    main()
