"""Building the solver's graph: dedup by digest, flag merging, deep chains."""

from __future__ import annotations

from buildkit_py.solver import BuildGraph, Edge, make_vertex


def test_vertices_with_one_digest_collapse_and_ignore_cache_wins() -> None:
    a1 = make_vertex({"op": "a"})
    a2 = make_vertex({"op": "a"}, ignore_cache=True)
    head = make_vertex({"op": "h"}, [make_vertex({"op": "l"}, [a1]),
                                     make_vertex({"op": "r"}, [a2])])
    g = BuildGraph(Edge(head))
    assert len(g) == 4
    assert g.vertex(a1.digest).ignore_cache
    # Every consumer points at the one kept vertex object.
    kept = g.vertex(a1.digest)
    assert all(e.vertex is kept for v in g.vertices() for e in v.inputs if e.vertex == kept)
    assert g.ancestors(head.digest) == {v.digest for v in g.vertices()} - {head.digest}


def test_inputs_come_before_consumers_in_a_deep_chain() -> None:
    v = make_vertex({"n": 0})
    for i in range(1, 3000):  # deeper than the recursion limit
        v = make_vertex({"n": i}, [v])
    g = BuildGraph(Edge(v))
    order = [x.digest for x in g.vertices()]
    assert len(order) == 3000 and order[-1] == v.digest
    seen: set[str] = set()
    for x in g.vertices():
        assert all(e.vertex.digest in seen for e in x.inputs)
        seen.add(x.digest)


def test_digest_depends_on_op_and_inputs_not_on_name() -> None:
    a = make_vertex({"op": "a"}, name="one")
    assert a.digest == make_vertex({"op": "a"}, name="two").digest
    assert make_vertex({"op": "b"}, [Edge(a, 0)]).digest != make_vertex(
        {"op": "b"}, [Edge(a, 1)]).digest
