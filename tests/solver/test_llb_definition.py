"""Solving an LLB Definition: names, ignore_cache and source locations reach the solver."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import pytest

from buildkit_py import llb
from buildkit_py.errors import BuildError
from buildkit_py.llb import ops_pb2
from buildkit_py.solver import CacheMap, OpContext, Result, Solver, Vertex, VertexError
from buildkit_py.solver.llb_adapter import graph_from_definition
from tests.solver.conftest import Env
from tests.solver.dirworker import DirResult, DirWorker


class PbHandler:
    """Interprets just enough LLB for the test: mkfile actions and `echo`/`false` execs."""

    def __init__(self, worker: DirWorker, vertex: Vertex) -> None:
        self.worker, self.vertex = worker, vertex
        self.op: ops_pb2.Op = vertex.op

    def cache_map(self, ctx: OpContext) -> CacheMap:
        stripped = ops_pb2.Op()
        stripped.CopyFrom(self.op)
        del stripped.inputs[:]
        return CacheMap("sha256:" + hashlib.sha256(
            stripped.SerializeToString(deterministic=True)).hexdigest())

    def exec(self, ctx: OpContext, inputs: Sequence[Result]) -> list[Result]:
        self.worker.count("exec", self.vertex.name)
        out = self.worker._write(inputs)  # type: ignore[attr-defined]
        if self.op.WhichOneof("op") == "file":
            for a in self.op.file.actions:
                (out.path / a.mkfile.path.lstrip("/")).write_bytes(a.mkfile.data)
        else:
            args = list(self.op.exec.meta.args)
            ctx.progress.log(1, " ".join(args) + "\n")
            if args[0] == "false":
                raise BuildError(f'process "{" ".join(args)}" did not complete successfully')
            (out.path / "ran").write_text(" ".join(args))
        return [out]

    def cancel(self) -> None:
        pass


class PbWorker(DirWorker):
    def resolve_op(self, vertex: Vertex) -> PbHandler:  # type: ignore[override]
        return PbHandler(self, vertex)

    def _write(self, inputs: Sequence[Result]) -> DirResult:
        import shutil

        out = self.new_result()
        for r in inputs:
            shutil.copytree(r.path, out.path, dirs_exist_ok=True)  # type: ignore[attr-defined]
        return out


DOCKERFILE = b"FROM scratch\nCOPY a /a\nRUN echo hi\nRUN false\n"


def definition(fail: bool, ignore: bool = False) -> llb.Definition:
    df = llb.SourceFile("Dockerfile", DOCKERFILE)
    st = llb.scratch().file(llb.mkfile("/a", data="A"), description="[2/3] COPY a /a",
                            location=df.location(2))
    st = st.run(["echo", "hi"], description="[3/3] RUN echo hi", location=df.location(3),
                ignore_cache=ignore).root()
    if fail:
        st = st.run(["false"], description="[4/4] RUN false", location=df.location(4)).root()
    return st.marshal("linux/amd64")


def test_definition_loads_names_flags_and_locations() -> None:
    d = definition(fail=False, ignore=True)
    graph = graph_from_definition(d.to_bytes())
    assert len(graph) == len(d)
    assert graph.head is not None and graph.head.vertex.digest == d.head_digest
    head = graph.head.vertex
    assert head.name == "[3/3] RUN echo hi" and head.ignore_cache
    assert head.location is not None
    assert (head.location.filename, head.location.start_line) == ("Dockerfile", 3)
    assert head.location.lines == ("RUN echo hi",)
    [copy] = [e.vertex for e in head.inputs]
    assert copy.name == "[2/3] COPY a /a" and not copy.ignore_cache
    assert isinstance(copy.op, ops_pb2.Op)
    # The DAG view is a networkx graph with input -> consumer edges.
    assert list(graph.dag.successors(copy.digest)) == [head.digest]


def test_definition_solves_and_rebuild_is_cached(tmp_path: Path, env: Env) -> None:
    worker = PbWorker(tmp_path / "pbstore")
    with Solver(worker, env.cache) as s:
        first = s.solve(definition(fail=False))
        assert (first.ref.result.path / "ran").read_text() == "echo hi"  # type: ignore[union-attr]
        first.release()
        second = s.solve(definition(fail=False))
        second.release()
    assert worker.total("exec") == 2
    assert second.ran == [] and len(second.cached) == 2


def test_failing_step_error_points_at_dockerfile_line(tmp_path: Path, env: Env) -> None:
    worker = PbWorker(tmp_path / "pbstore")
    with Solver(worker, env.cache) as s, pytest.raises(VertexError) as info:
        s.solve(definition(fail=True))
    err = info.value
    assert err.vertex_name == "[4/4] RUN false"
    assert err.location is not None and err.location.start_line == 4
    assert err.log_tail == ["false"]
    text = err.render()
    assert "   4 | >>> RUN false" in text and " > [4/4] RUN false:" in text
    assert text.splitlines()[-1].startswith('ERROR: process "false" did not complete')
