"""Why a step ran: the solver compares a miss with the previous run of the same step slot."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from buildkit_py.errors import SourceLocation
from buildkit_py.solver import ProgressBus, Vertex, make_vertex
from buildkit_py.solver.explain import (
    NO_CACHE_BUILD,
    NO_CACHE_STEP,
    NO_CACHE_YET,
    OP_CHANGED,
    miss_metadata,
    step_slot,
)
from buildkit_py.solver.progress import ProgressEvent, VertexCacheMiss, VertexStarted
from buildkit_py.solver.vertex import Edge
from buildkit_py.solver.worker import OpContext
from tests.solver.conftest import Env
from tests.solver.dirworker import DirHandler, DirWorker


def recorder() -> tuple[ProgressBus, list[ProgressEvent]]:
    bus = ProgressBus()
    events: list[ProgressEvent] = []
    lock = threading.Lock()

    def add(ev: ProgressEvent) -> None:
        with lock:
            events.append(ev)

    bus.subscribe(add)
    return bus, events


def reasons(events: list[ProgressEvent]) -> dict[str, str]:
    return {ev.name: ev.reason for ev in events if isinstance(ev, VertexCacheMiss)}


def step(index: int, files: dict[str, str], inputs: Any = (), *, total: int = 3,
         cmd: str = "write", **extra: Any) -> Vertex:
    op = {"kind": "write", "files": files, **extra}
    return make_vertex(op, inputs, name=f"[s {index}/{total}] {cmd}")


def solve(env: Env, head: Vertex, **kw: Any) -> tuple[dict[str, str], Any]:
    bus, events = recorder()
    res = env.solver().solve(head, progress=bus, **kw)
    res.release()
    return reasons(events), res


def test_slot_is_stage_and_index_not_command_or_count() -> None:
    loc = SourceLocation("Dockerfile", 3, 3)
    a = make_vertex({"a": 1}, name="[base 2/4] RUN make")
    b = Vertex(a.digest, a.op, name="[base 2/5] RUN make -j4", location=loc)
    c = Vertex(a.digest, a.op, name="[base 3/5] RUN make", location=loc)
    assert step_slot(b) == "Dockerfile|[base 2]"
    assert step_slot(a) == "|[base 2]"
    assert step_slot(c) != step_slot(b)
    assert step_slot(make_vertex({}, name="[2/3] RUN x")) == "|[2]"
    assert step_slot(make_vertex({}, name="[linux/arm64 base 1/2] FROM x")).endswith(
        "[linux/arm64 base 1]")
    assert step_slot(make_vertex({}, name="plain name")) == "|plain name"


def test_first_run_says_no_cache_and_a_cached_step_says_nothing(env: Env) -> None:
    one = step(1, {"a": "1"})
    two = step(2, {"b": "2"}, [one])
    got, res = solve(env, two)
    assert got == {"[s 1/3] write": NO_CACHE_YET, "[s 2/3] write": NO_CACHE_YET}
    assert {o.name: o.reason for o in res.vertices.values()} == got
    got, res = solve(env, two)
    assert got == {}
    assert all(o.reason is None for o in res.vertices.values())


def test_changed_op_then_parent_rebuilt(env: Env) -> None:
    one = step(1, {"a": "1"})
    solve(env, step(2, {"b": "2"}, [one]))
    one_changed = step(1, {"a": "changed"})
    got, res = solve(env, step(2, {"b": "2"}, [one_changed]))
    assert got == {"[s 1/3] write": OP_CHANGED,
                   "[s 2/3] write": "parent step [s 1/3] write was rebuilt"}
    meta = miss_metadata([res])["bkpy.cache.misses"]
    assert {m["name"]: m["reason"] for m in meta} == got
    assert all(m["vertex"].startswith("sha256:") for m in meta)


def test_parent_changed_without_running(env: Env) -> None:
    # the parent hits an older record (it ran before, then changed back): "changed"
    old, new = step(1, {"a": "old"}), step(1, {"a": "new"})
    solve(env, step(2, {"b": "2"}, [old]))
    solve(env, step(2, {"b": "2"}, [new]))
    solve(env, old)  # old parent cached again, the child with it is cached too
    got, _ = solve(env, step(2, {"b": "3"}, [old]))  # the child's own op changed
    assert got == {"[s 2/3] write": OP_CHANGED + "; parent step [s 1/3] write changed"}


def test_no_cache_for_the_build_and_for_one_step(env: Env) -> None:
    one = step(1, {"a": "1"})
    two = step(2, {"b": "2"}, [one])
    solve(env, two)
    got, _ = solve(env, two, no_cache=True)
    assert got == {"[s 1/3] write": NO_CACHE_BUILD, "[s 2/3] write": NO_CACHE_BUILD}
    filtered = Vertex(two.digest, two.op, (Edge(one),), two.name, ignore_cache=True)
    got, _ = solve(env, filtered)
    assert got == {"[s 2/3] write": NO_CACHE_STEP}


def test_content_input_changed_names_the_producer(env: Env, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("1")
    base = step(1, {"base": "x"})

    def build() -> Vertex:
        local = make_vertex({"kind": "local", "dir": str(src), "include": ["f"]},
                            name="local src")
        return make_vertex({"kind": "copy", "src": "f"}, [base, local], name="[s 2/3] COPY f")

    solve(env, build())
    (src / "f").write_text("2")
    got, _ = solve(env, build())
    # DirWorker's local source keys on its content: its own op changed too
    assert got["[s 2/3] COPY f"] == "files from local src changed"


class ExplainingHandler(DirHandler):
    """A DirHandler offering the optional hooks, as the real op handlers do."""

    def change_summary(self, ctx: OpContext) -> str:
        return str(sorted(self.op.get("files", {}).items()))

    def describe_change(self, ctx: OpContext, old_summary: str) -> str | None:
        return f"files were {old_summary}" if "files" in self.op else None

    def describe_output_change(self, old: str, new: str) -> str | None:
        return f"output {old[:13]} -> {new[:13]}"


class ExplainingWorker(DirWorker):
    def resolve_op(self, vertex: Vertex) -> DirHandler:
        if vertex.op.get("kind") == "quiet":
            return QuietHandler(self, vertex)
        return ExplainingHandler(self, vertex)


class QuietHandler(DirHandler):
    miss_reason = None

    def exec(self, ctx: OpContext, inputs: Any) -> list[Any]:
        return [self.worker.new_result()]


def test_handler_hooks_name_op_and_content_changes(env: Env, tmp_path: Path) -> None:
    env.worker = ExplainingWorker(tmp_path / "store2")
    got, _ = solve(env, step(1, {"a": "1"}))
    assert got == {"[s 1/3] write": NO_CACHE_YET}
    got, _ = solve(env, step(1, {"a": "2"}))
    assert got == {"[s 1/3] write": "files were [('a', '1')]"}

    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("1")
    base = step(1, {"a": "2"})

    def build() -> Vertex:
        local = make_vertex({"kind": "local", "dir": str(src), "include": ["f"]},
                            name="local src")
        return make_vertex({"kind": "copy", "src": "f"}, [base, local], name="[s 2/3] COPY f")

    solve(env, build())
    (src / "f").write_text("2")
    got, _ = solve(env, build())
    assert got["[s 2/3] COPY f"].startswith("output sha256:")


def test_a_step_that_never_caches_by_design_says_nothing(env: Env, tmp_path: Path) -> None:
    env.worker = ExplainingWorker(tmp_path / "store2")
    quiet = make_vertex({"kind": "quiet", "n": 1}, name="[internal] load build context",
                        ignore_cache=True)
    bus, events = recorder()
    env.solver().solve(quiet, progress=bus).release()
    assert reasons(events) == {}
    assert any(isinstance(e, VertexStarted) for e in events)


def test_reason_follows_started_and_is_sent_once(env: Env) -> None:
    bus, events = recorder()
    env.solver().solve(step(1, {"a": "1"}), progress=bus).release()
    kinds = [type(e).__name__ for e in events if type(e).__name__.startswith("Vertex")]
    assert kinds.index("VertexCacheMiss") == kinds.index("VertexStarted") + 1
    assert kinds.count("VertexCacheMiss") == 1


def test_reason_crosses_the_wire_to_a_remote_client() -> None:
    from buildkit_py.api.wire import event_from_pb, event_to_pb

    ev = VertexCacheMiss("sha256:1", "[s 1/2] RUN x", "command changed", 12.5)
    assert event_from_pb(event_to_pb(ev)) == ev
