"""Load an LLB Definition into the solver's BuildGraph.

Each solver vertex keeps the ``ops_pb2.Op`` as its ``op`` (the worker interprets it) and
takes name, ignore_cache, description, progress group and source location from the
Definition's metadata and source map.
"""

from __future__ import annotations

import shlex

from buildkit_py.llb import ops_pb2
from buildkit_py.llb.definition import Definition
from buildkit_py.solver.vertex import BuildGraph, Edge, Vertex


def graph_from_definition(definition: Definition | ops_pb2.Definition | bytes) -> BuildGraph:
    """A BuildGraph for a Definition (or its message / serialised bytes)."""
    if isinstance(definition, bytes | bytearray | memoryview):
        definition = Definition.from_bytes(bytes(definition))
    elif isinstance(definition, ops_pb2.Definition):
        definition = Definition.from_proto(definition)
    if not isinstance(definition, Definition):
        raise TypeError(f"cannot solve a {type(definition).__name__}")
    made: dict[str, Vertex] = {}
    for lv in definition.vertices():  # inputs come before their consumers
        md = lv.metadata
        locations = definition.locations(lv.digest)
        group = md.progress_group.id if md.HasField("progress_group") else ""
        made[lv.digest] = Vertex(
            digest=lv.digest,
            op=lv.op,
            inputs=tuple(Edge(made[i.digest], int(i.index)) for i in lv.op.inputs),
            name=lv.name or default_name(lv.op),
            ignore_cache=md.ignore_cache,
            location=locations[0] if locations else None,
            description=dict(md.description),
            progress_group=group or None,
        )
    head = definition.head
    return BuildGraph(Edge(made[head.digest], int(head.index)) if head is not None else None)


def default_name(op: ops_pb2.Op) -> str:
    """A display name for a vertex without ``llb.customname`` (as BuildKit derives it)."""
    kind = op.WhichOneof("op")
    if kind == "source":
        return op.source.identifier
    if kind == "exec":
        return shlex.join(op.exec.meta.args)
    if kind == "file":
        names = [a.WhichOneof("action") or "" for a in op.file.actions]
        return "file: " + ", ".join(n for n in names if n)
    return kind or "op"
