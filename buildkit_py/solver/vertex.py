"""The solver's view of a build graph: vertices, edges and the DAG that holds them.

The solver does not know op kinds; a vertex carries its op opaquely for the worker
(an ``ops_pb2.Op`` when loaded from an LLB Definition, anything for other frontends or
tests). Vertices are identified by digest: two vertices with one digest are the same.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from buildkit_py.errors import SourceLocation


@dataclass(frozen=True, eq=False, slots=True)
class Vertex:
    """One op of the graph with its inputs and non-digest metadata."""

    digest: str
    op: Any
    inputs: tuple[Edge, ...] = ()
    name: str = ""
    ignore_cache: bool = False
    location: SourceLocation | None = None
    description: Mapping[str, str] = field(default_factory=dict)
    progress_group: str | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vertex) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __repr__(self) -> str:
        return f"Vertex({self.digest[:19]}, {self.name!r})"


@dataclass(frozen=True, slots=True)
class Edge:
    """One output (``index``) of a vertex, as consumed by another vertex or the client."""

    vertex: Vertex
    index: int = 0


def make_vertex(
    op: Any,
    inputs: Sequence[Edge | Vertex] = (),
    *,
    name: str = "",
    ignore_cache: bool = False,
    location: SourceLocation | None = None,
) -> Vertex:
    """Build a vertex whose digest is sha256 over canonical JSON of ``op`` and its inputs.

    For frontends (and tests) that do not go through LLB; ``op`` must be JSON-serialisable.
    """
    edges = tuple(i if isinstance(i, Edge) else Edge(i, 0) for i in inputs)
    body = json.dumps(
        {"op": op, "inputs": [[e.vertex.digest, e.index] for e in edges]},
        sort_keys=True,
        separators=(",", ":"),
    )
    digest = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
    return Vertex(digest, op, edges, name or digest[:19], ignore_cache, location)


class BuildGraph:
    """A deduplicated DAG of vertices with the edge the build returns.

    Vertices repeated under one digest collapse into one; if any copy asks to ignore
    the cache, the kept one does. Vertices are immutable and name their inputs, so a
    graph built from them cannot have a cycle. :attr:`dag` gives the graph as a
    networkx DiGraph (node = digest with attribute ``vertex``, edges input -> consumer);
    it is built on first use because importing networkx costs ~0.25 s, which the
    solver's hot path and the CLI start do not need to pay.
    """

    __slots__ = ("_dag", "_vertices", "head")

    def __init__(self, head: Edge | None) -> None:
        self._vertices: dict[str, Vertex] = {}  # post-order: inputs before consumers
        self._dag: Any = None
        self.head: Edge | None = None
        if head is not None:
            self.head = Edge(self._add(head.vertex), head.index)

    def _add(self, root: Vertex) -> Vertex:
        # Iterative post-order walk: deep chains must not hit the recursion limit.
        canon = self._vertices
        stack: list[tuple[Vertex, bool]] = [(root, False)]
        while stack:
            v, expanded = stack.pop()
            kept = canon.get(v.digest)
            if kept is not None:
                if v.ignore_cache and not kept.ignore_cache:
                    canon[v.digest] = _replace(kept, ignore_cache=True)
                continue
            if not expanded:
                stack.append((v, True))
                stack.extend((e.vertex, False) for e in v.inputs if e.vertex.digest not in canon)
                continue
            inputs = tuple(Edge(canon[e.vertex.digest], e.index) for e in v.inputs)
            if any(a.vertex is not b.vertex for a, b in zip(inputs, v.inputs, strict=True)):
                v = _replace(v, inputs=inputs)
            canon[v.digest] = v
        # A flag merged into an input after its consumer was kept: re-point consumers.
        for d, v in list(canon.items()):
            if any(e.vertex is not canon[e.vertex.digest] for e in v.inputs):
                canon[d] = _replace(
                    v, inputs=tuple(Edge(canon[e.vertex.digest], e.index) for e in v.inputs)
                )
        return canon[root.digest]

    def __len__(self) -> int:
        return len(self._vertices)

    def __contains__(self, digest: object) -> bool:
        return digest in self._vertices

    def vertex(self, digest: str) -> Vertex:
        return self._vertices[digest]

    def vertices(self) -> list[Vertex]:
        """All vertices, inputs before their consumers."""
        return list(self._vertices.values())

    @property
    def dag(self) -> Any:
        """The graph as a ``networkx.DiGraph`` (built once, on first use)."""
        if self._dag is None:
            import networkx as nx  # reason: ~90 ms, only for graph queries; builds never use it

            g = nx.DiGraph()
            for d, v in self._vertices.items():
                g.add_node(d, vertex=v)
                for e in v.inputs:
                    g.add_edge(e.vertex.digest, d)
            self._dag = g
        return self._dag

    def ancestors(self, digest: str) -> set[str]:
        """Digests of every vertex ``digest`` depends on."""
        import networkx as nx  # reason: ~90 ms, only for graph queries; builds never use it

        found: set[str] = nx.ancestors(self.dag, digest)
        return found


def _replace(v: Vertex, **changes: Any) -> Vertex:
    fields = {
        "digest": v.digest, "op": v.op, "inputs": v.inputs, "name": v.name,
        "ignore_cache": v.ignore_cache, "location": v.location,
        "description": v.description, "progress_group": v.progress_group,
    }
    fields.update(changes)
    return Vertex(**fields)


def graph_of(head: Edge | Vertex | None) -> BuildGraph:
    """Convenience: a BuildGraph returning ``head`` (a vertex means its output 0)."""
    if isinstance(head, Vertex):
        head = Edge(head, 0)
    return BuildGraph(head)
