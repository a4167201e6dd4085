"""Scheduling, dedup, laziness, cancellation and cache decisions of the solver."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from buildkit_py.errors import BuildError, SourceLocation
from buildkit_py.solver import (
    Cancelled,
    CancelToken,
    Edge,
    ProgressBus,
    SolveResult,
    Vertex,
    VertexError,
    make_vertex,
)
from buildkit_py.solver.progress import (
    ProgressEvent,
    VertexCached,
    VertexCompleted,
    VertexFailed,
    VertexStarted,
)
from tests.solver.conftest import Env
from tests.solver.dirworker import DirResult, wait_for


def write(tag: str, inputs=(), **extra):  # type: ignore[no-untyped-def]
    op = {"kind": "write", "tag": tag, "files": {f"{tag}.txt": tag}, **extra}
    return make_vertex(op, inputs, name=f"write {tag}")


def head_path(res: SolveResult) -> Path:
    assert res.ref is not None
    result = res.ref.result
    assert isinstance(result, DirResult)
    return result.path


def recorder() -> tuple[ProgressBus, list[ProgressEvent]]:
    bus = ProgressBus()
    events: list[ProgressEvent] = []
    lock = threading.Lock()

    def add(ev: ProgressEvent) -> None:
        with lock:
            events.append(ev)

    bus.subscribe(add)
    return bus, events


def chain(n: int) -> list[Vertex]:
    out = [write("v0")]
    for i in range(1, n):
        out.append(write(f"v{i}", [out[-1]]))
    return out


def test_identical_vertices_in_one_build_run_once(env: Env) -> None:
    base_a, base_b = write("base"), write("base")  # built separately, same digest
    assert base_a is not base_b and base_a.digest == base_b.digest
    head = write("head", [write("left", [base_a]), write("right", [base_b])])
    with env.solver() as s:
        res = s.solve(head)
    assert env.worker.counts[("exec", "base")] == 1
    assert env.worker.total("exec") == 4
    assert sorted(p.name for p in head_path(res).iterdir()) == [
        "base.txt", "head.txt", "left.txt", "right.txt"]
    res.release()


def test_rebuild_with_nothing_changed_runs_nothing_and_reports_all_cached(env: Env) -> None:
    vs = chain(5)
    with env.solver() as s:
        first = s.solve(vs[-1])
        assert len(first.ran) == 5
        first.release()
        bus, events = recorder()
        second = s.solve(chain(5)[-1], progress=bus)
    assert env.worker.total("exec") == 5
    assert second.ran == []
    assert sorted(second.cached) == sorted(v.digest for v in vs)
    assert {e.digest for e in events if isinstance(e, VertexCached)} == {v.digest for v in vs}
    assert not [e for e in events if isinstance(e, VertexStarted)]
    assert (head_path(second) / "v4.txt").read_text() == "v4"
    second.release()


def test_content_keyed_input_edit_invalidates_only_downstream(env: Env, tmp_path: Path) -> None:
    ctx = tmp_path / "context"
    ctx.mkdir()
    (ctx / "a.txt").write_text("a1")
    (ctx / "b.txt").write_text("b1")

    def graph():  # type: ignore[no-untyped-def]
        src = make_vertex({"kind": "local", "dir": str(ctx), "include": ["a.txt", "b.txt"],
                           "tag": "src"}, name="context")
        base = write("base")
        copy_a = make_vertex({"kind": "copy", "src": "a.txt", "tag": "copy-a"}, [base, src])
        after_a = write("after-a", [copy_a])
        copy_b = make_vertex({"kind": "copy", "src": "b.txt", "tag": "copy-b"}, [base, src])
        after_b = write("after-b", [copy_b])
        return write("head", [after_a, after_b])

    with env.solver() as s:
        s.solve(graph()).release()
        assert env.worker.total("exec") == 7
        env.worker.counts.clear()
        (ctx / "a.txt").write_text("a2")
        res = s.solve(graph())
    ran = {label for (what, label) in env.worker.counts if what == "exec"}
    # The source re-reads the context; only what depends on a.txt's content reruns.
    assert ran == {"src", "copy-a", "after-a", "head"}
    assert (head_path(res) / "a.txt").read_text() == "a2"
    assert (head_path(res) / "b.txt").read_text() == "b1"
    res.release()


def _interval(events: list[ProgressEvent], digest: str) -> tuple[float, float]:
    start = next(e.started for e in events if isinstance(e, VertexStarted) and e.digest == digest)
    end = next(e.completed for e in events
               if isinstance(e, VertexCompleted) and e.digest == digest)
    return start, end


def test_two_independent_slow_vertices_overlap_in_time(env: Env) -> None:
    a, b = write("slow-a", sleep=0.3), write("slow-b", sleep=0.3)
    bus, events = recorder()
    with env.solver(max_parallelism=2) as s:
        s.solve(write("head", [a, b]), progress=bus).release()
    (a0, a1), (b0, b1) = _interval(events, a.digest), _interval(events, b.digest)
    assert a0 < b1 and b0 < a1  # the run intervals intersect


def test_max_parallelism_one_runs_vertices_one_at_a_time(env: Env) -> None:
    a, b = write("slow-a", sleep=0.1), write("slow-b", sleep=0.1)
    bus, events = recorder()
    with env.solver(max_parallelism=1) as s:
        s.solve(write("head", [a, b]), progress=bus).release()
    (a0, a1), (b0, b1) = _interval(events, a.digest), _interval(events, b.digest)
    assert a1 <= b0 or b1 <= a0


def test_failure_cancels_the_rest_and_names_the_vertex(env: Env) -> None:
    loc = SourceLocation("Dockerfile", 3, 3, ("RUN make",))
    slow = write("slow", sleep=30)
    lines = [f"line {i}" for i in range(15)]
    bad = make_vertex({"kind": "fail", "tag": "bad", "log": lines, "sleep": 0.2},
                      name="[build 2/3] RUN make", location=loc)
    bus, events = recorder()
    with env.solver() as s:
        with pytest.raises(VertexError) as info:
            s.solve(write("head", [slow, bad]), progress=bus)
        # The slow sibling was told to stop and did stop, before solve() returned.
        assert env.worker.counts[("cancel", "slow")] == 1
        assert env.worker.counts[("interrupted", "slow")] == 1
    err = info.value
    assert err.digest == bad.digest
    # the message is BuildKit's (without the step); the step is named with the log tail
    assert err.message == "process exited with code 1"
    assert err.vertex_name == "[build 2/3] RUN make"
    assert " > [build 2/3] RUN make:" in err.render()
    assert err.location == loc
    assert err.log_tail == [*lines[-9:], "boom"]  # the last 10 lines, both streams
    assert "Dockerfile:3" in err.render()
    assert env.worker.counts[("exec", "head")] == 0
    failed = {e.digest: e for e in events if isinstance(e, VertexFailed)}
    assert not failed[bad.digest].cancelled and failed[slow.digest].cancelled
    assert env.worker.live == 0  # no result leaked


def test_cancel_token_stops_the_build(env: Env) -> None:
    slow = write("slow", sleep=30)
    token = CancelToken()
    bus = ProgressBus()

    def on_event(e: ProgressEvent) -> None:
        if isinstance(e, VertexStarted):
            token.cancel()

    bus.subscribe(on_event)
    with env.solver() as s:
        with pytest.raises(Cancelled):
            s.solve(write("head", [slow]), progress=bus, cancel=token)
        assert env.worker.counts[("interrupted", "slow")] == 1
        assert env.worker.counts[("cancel", "slow")] == 1
        assert env.worker.live == 0


def test_two_concurrent_solves_sharing_a_slow_vertex_run_it_once(env: Env) -> None:
    env.worker.gates["shared"] = threading.Event()
    shared = write("shared", gate="shared")
    bus1, _ = recorder()
    bus2, events2 = recorder()
    results: dict[str, SolveResult] = {}
    with env.solver() as s:
        t1 = threading.Thread(target=lambda: results.update(
            one=s.solve(write("one", [shared]), progress=bus1, session="s1")))
        t1.start()
        wait_for(lambda: env.worker.counts[("exec", "shared")] == 1)
        t2 = threading.Thread(target=lambda: results.update(
            two=s.solve(write("two", [write("shared", gate="shared")]), progress=bus2,
                        session="s2")))
        t2.start()
        # The late build joins the running vertex: it hears its start replayed.
        wait_for(lambda: any(isinstance(e, VertexStarted) and e.digest == shared.digest
                             for e in list(events2)))
        env.worker.gates["shared"].set()
        t1.join(10)
        t2.join(10)
    assert env.worker.counts[("exec", "shared")] == 1
    # The shared vertex could reach both clients' sessions (context, secrets).
    assert env.worker.sessions_seen["shared"] == ("s1", "s2")
    assert env.worker.sessions_seen["one"] == ("s1",)
    assert (head_path(results["one"]) / "shared.txt").exists()
    assert (head_path(results["two"]) / "shared.txt").exists()
    assert results["two"].vertices[shared.digest].state == "ran"
    for r in results.values():
        r.release()
    assert env.worker.live == 0


def test_cache_survives_a_new_solver_on_the_same_state_dir(env: Env) -> None:
    with env.solver() as s:
        s.solve(chain(4)[-1]).release()
    env.restart()
    with env.solver() as s:
        res = s.solve(chain(4)[-1])
    assert env.worker.total("exec") == 0
    assert len(res.cached) == 4
    assert (head_path(res) / "v0.txt").read_text() == "v0"
    res.release()


def test_head_hit_never_executes_or_loads_upstream(env: Env) -> None:
    vs = chain(4)
    with env.solver() as s:
        s.solve(vs[-1]).release()
    # Remove the upstream records entirely: a head hit must not even look at them.
    with env.solver() as s:
        keys = s.solve(vs[-1]).vertices
    for v in vs[:-1]:
        key = keys[v.digest].key
        assert key is not None
        from buildkit_py.solver.cache_key import edge_key
        env.cache.delete(edge_key(key, 0))
    env.restart()
    with env.solver() as s:
        res = s.solve(chain(4)[-1])
    assert env.worker.total("exec") == 0
    assert env.worker.total("load") == 1  # the head only
    assert res.vertices[vs[-1].digest].state == "cached"
    assert all(res.vertices[v.digest].state == "skipped" for v in vs[:-1])
    res.release()


def test_missing_result_snapshot_reruns_the_vertex(env: Env) -> None:
    import shutil

    with env.solver() as s:
        first = s.solve(chain(2)[-1])
        rid = first.ref.id if first.ref else ""
        first.release()
        shutil.rmtree(env.worker.store / rid)
        res = s.solve(chain(2)[-1])
    assert env.worker.counts[("exec", "v1")] == 2
    assert env.worker.counts[("exec", "v0")] == 1  # loaded from cache to rerun v1
    assert (head_path(res) / "v1.txt").exists()
    res.release()


def test_no_cache_runs_everything_and_still_saves(env: Env) -> None:
    with env.solver() as s:
        s.solve(chain(3)[-1]).release()
        res = s.solve(chain(3)[-1], no_cache=True)
        assert len(res.ran) == 3
        rid = res.ref.id if res.ref else ""
        res.release()
        again = s.solve(chain(3)[-1])
    assert env.worker.total("exec") == 6
    assert again.ref is not None and again.ref.id == rid  # the no-cache result was saved
    again.release()


def test_ignore_cache_vertex_reruns_alone(env: Env) -> None:
    def graph(ignore: bool):  # type: ignore[no-untyped-def]
        a = write("a")
        b = make_vertex({"kind": "write", "tag": "b", "files": {}}, [a], ignore_cache=ignore)
        return write("c", [b])

    with env.solver() as s:
        s.solve(graph(False)).release()
        env.worker.counts.clear()
        res = s.solve(graph(True))
    # Like BuildKit: the marked vertex reruns; keys downstream are unchanged, so the
    # consumer's record still hits (the converter marks every vertex it wants rebuilt).
    assert {label for (w, label) in env.worker.counts if w == "exec"} == {"b"}
    assert res.vertices[graph(True).digest].state == "cached"
    res.release()


def test_equal_cache_keys_from_different_digests_run_once(env: Env) -> None:
    a = make_vertex({"kind": "write", "tag": "x", "files": {"x": "1"}, "nocache_field": 1})
    b = make_vertex({"kind": "write", "tag": "x", "files": {"x": "1"}, "nocache_field": 2})
    assert a.digest != b.digest
    with env.solver() as s:
        res = s.solve(write("head", [a, b]))
    assert env.worker.counts[("exec", "x")] == 1
    res.release()
    assert env.worker.live == 0


def test_multi_output_vertex_runs_once_for_all_outputs(env: Env) -> None:
    m = make_vertex({"kind": "multi", "tag": "m", "files": [{"o0": "0"}, {"o1": "1"}]})
    head = write("head", [Edge(m, 0), Edge(m, 1)])
    with env.solver() as s:
        res = s.solve(head)
        assert env.worker.counts[("exec", "m")] == 1
        assert {p.name for p in head_path(res).iterdir()} == {"o0", "o1", "head.txt"}
        res.release()
        only1 = s.solve(Edge(m, 1))
    assert only1.vertices[m.digest].state == "cached"
    assert {p.name for p in head_path(only1).iterdir()} == {"o1"}
    only1.release()


def test_results_are_released_when_builds_end(env: Env) -> None:
    with env.solver() as s:
        res = s.solve(chain(3)[-1])
        assert env.worker.live == 1  # only the head, held by the caller
        res.release()
        assert env.worker.live == 0
        assert not any(env.cache.in_use(e.result_id) for e in env.cache.usage().entries)


def test_empty_graph_solves_to_no_result(env: Env) -> None:
    with env.solver() as s:
        res = s.solve(None)
    assert res.ref is None and res.vertices == {}


def _start(s, head, results, name, **kw):  # type: ignore[no-untyped-def]
    def run() -> None:
        try:
            results[name] = s.solve(head, **kw)
        except BaseException as exc:
            results[name] = exc

    t = threading.Thread(target=run)
    t.start()
    return t


def test_cancelling_one_build_keeps_a_shared_vertex_running_for_the_other(env: Env) -> None:
    env.worker.gates["g"] = threading.Event()
    token = CancelToken()
    results: dict[str, object] = {}
    bus2, events2 = recorder()
    with env.solver() as s:
        t1 = _start(s, write("one", [write("shared", gate="g")]), results, "one",
                    cancel=token)
        wait_for(lambda: env.worker.counts[("exec", "shared")] == 1)
        t2 = _start(s, write("two", [write("shared", gate="g")]), results, "two",
                    progress=bus2)
        wait_for(lambda: any(isinstance(e, VertexStarted) for e in list(events2)))
        token.cancel()
        t1.join(10)
        assert isinstance(results["one"], Cancelled)
        env.worker.gates["g"].set()
        t2.join(10)
    two = results["two"]
    assert isinstance(two, SolveResult)
    assert env.worker.counts[("exec", "shared")] == 1
    assert env.worker.counts[("cancel", "shared")] == 0
    assert (head_path(two) / "two.txt").exists()
    two.release()


def test_normal_build_joins_a_running_no_cache_job_but_not_the_reverse(env: Env) -> None:
    env.worker.gates["g"] = threading.Event()
    env.worker.gates["g"].set()
    results: dict[str, object] = {}
    bus, events = recorder()
    with env.solver() as s:
        s.solve(write("shared", gate="g")).release()  # now there is a cache record
        env.worker.gates["g"] = threading.Event()
        t1 = _start(s, write("one", [write("shared", gate="g")]), results, "nocache",
                    no_cache=True)
        wait_for(lambda: env.worker.counts[("exec", "shared")] == 2)
        t2 = _start(s, write("two", [write("shared", gate="g")]), results, "normal",
                    progress=bus)
        wait_for(lambda: any(isinstance(e, VertexStarted) for e in list(events)))
        env.worker.gates["g"].set()
        t1.join(10)
        t2.join(10)
        normal = results["normal"]
        assert isinstance(normal, SolveResult)
        # The cache-using build took the fresh no-cache run, not the old record.
        assert normal.vertices[write("shared", gate="g").digest].state == "ran"
        assert env.worker.counts[("exec", "shared")] == 2
        for r in results.values():
            assert isinstance(r, SolveResult)
            r.release()

        # Reverse: a build holding a cached result must not serve a no-cache build.
        env.worker.gates["late"] = threading.Event()
        t3 = _start(s, write("three", [write("shared", gate="g")], gate="late"), results,
                    "holder")
        wait_for(lambda: env.worker.counts[("exec", "three")] == 1)
        fresh = s.solve(write("shared", gate="g"), no_cache=True)
        assert env.worker.counts[("exec", "shared")] == 3
        fresh.release()
        env.worker.gates["late"].set()
        t3.join(10)
        holder = results["holder"]
        assert isinstance(holder, SolveResult)
        assert holder.vertices[write("shared", gate="g").digest].state == "cached"
        holder.release()


def test_a_failure_shared_by_two_builds_reaches_both(env: Env) -> None:
    env.worker.gates["g"] = threading.Event()
    results: dict[str, object] = {}
    bad = make_vertex({"kind": "fail", "tag": "bad", "gate": "g"}, name="bad step")
    bus2, events2 = recorder()
    with env.solver() as s:
        t1 = _start(s, write("one", [bad]), results, "one")
        wait_for(lambda: env.worker.counts[("exec", "bad")] == 1)
        t2 = _start(s, write("two", [bad]), results, "two", progress=bus2)
        wait_for(lambda: any(isinstance(e, VertexStarted) for e in list(events2)))
        env.worker.gates["g"].set()
        t1.join(10)
        t2.join(10)
    assert env.worker.counts[("exec", "bad")] == 1
    for name in ("one", "two"):
        err = results[name]
        assert isinstance(err, VertexError) and err.vertex_name == "bad step"


def test_worker_bug_in_cache_map_becomes_a_build_error_naming_the_vertex(env: Env) -> None:
    class Broken:
        def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
            self.inner = inner

        def resolve_op(self, vertex):  # type: ignore[no-untyped-def]
            handler = self.inner.resolve_op(vertex)
            if vertex.name == "write broken":
                def cache_map(ctx):  # type: ignore[no-untyped-def]
                    raise KeyError("platform")
                handler.cache_map = cache_map
            return handler

        def load_result(self, rid):  # type: ignore[no-untyped-def]
            return self.inner.load_result(rid)

    from buildkit_py.solver import Solver

    with Solver(Broken(env.worker), env.cache) as s, pytest.raises(VertexError) as info:
        s.solve(write("head", [write("broken"), write("fine")]))
    assert info.value.vertex_name == "write broken"
    assert "KeyError: 'platform'" in info.value.message
    assert env.worker.counts[("exec", "head")] == 0


def test_unsupported_op_from_the_worker_is_a_build_error(env: Env) -> None:
    class Picky:
        def resolve_op(self, vertex):  # type: ignore[no-untyped-def]
            if vertex.op.get("kind") == "local":
                raise BuildError("unsupported source scheme: ftp://x")
            return env.worker.resolve_op(vertex)

        def load_result(self, rid):  # type: ignore[no-untyped-def]
            return env.worker.load_result(rid)

    from buildkit_py.solver import Solver

    src = make_vertex({"kind": "local", "dir": "/nonexistent", "include": []}, name="ftp src")
    with Solver(Picky(), env.cache) as s, pytest.raises(VertexError) as info:
        s.solve(write("head", [src]))
    assert info.value.vertex_name == "ftp src"
    assert "unsupported source scheme" in info.value.message


def test_cancel_token_runs_every_callback_even_if_one_raises() -> None:
    token = CancelToken()
    ran: list[str] = []

    def bad() -> None:
        raise RuntimeError("stopper failed")

    token.add_callback(bad)
    token.add_callback(lambda: ran.append("second"))
    token.cancel("stop")
    assert ran == ["second"] and token.cancelled and token.reason == "stop"
    with pytest.raises(Cancelled):
        token.raise_if_cancelled()
    late: list[int] = []
    token.add_callback(lambda: late.append(1))  # already cancelled: runs at once
    assert late == [1]
