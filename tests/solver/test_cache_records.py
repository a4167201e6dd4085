"""Persistent cache records in sqlite: load/save, key graph, usage, prune, concurrency."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from buildkit_py.solver.cache import CacheManager
from buildkit_py.solver.cache_key import KeyInput, edge_key, vertex_key


@dataclass
class FakeSnapshot:
    """A result as the cache sees it: an id and a size (nothing to release)."""

    id: str
    size: int = 10

    def release(self) -> None:
        pass


def test_save_then_load_and_survive_reopen(tmp_path: Path) -> None:
    with CacheManager(tmp_path) as cache:
        assert cache.load("k1") is None
        cache.save("k1", FakeSnapshot("r1", 42), description="RUN make")
        rec = cache.load("k1")
        assert rec is not None and (rec.result_id, rec.size) == ("r1", 42)
    with CacheManager(tmp_path) as cache:
        rec = cache.load("k1")
        assert rec is not None and rec.description == "RUN make"



def test_the_first_querying_thread_takes_the_opening_connection(tmp_path: Path) -> None:
    """The solver's threads query, the one that opens the cache does not: one connection
    per querying thread, none left idle."""
    with CacheManager(tmp_path) as cache:
        cache.save("k1", FakeSnapshot("r1"))  # this thread takes the opening connection
        seen: list[object] = []
        worker = threading.Thread(target=lambda: seen.append(cache.load("k1")))
        worker.start()
        worker.join()
        assert seen and seen[0] is not None
        assert len(cache._conns) == 2
    with CacheManager(tmp_path) as cache:
        worker = threading.Thread(target=lambda: seen.append(cache.load("k1")))
        worker.start()
        worker.join()
        assert seen[-1] is not None
        assert len(cache._conns) == 1
        assert cache.load("k1") is not None  # the opening thread now opens its own
        assert len(cache._conns) == 2

def test_database_is_in_wal_mode_under_the_state_dir(tmp_path: Path) -> None:
    CacheManager(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "cache.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_newer_result_replaces_older_for_a_key(tmp_path: Path) -> None:
    with CacheManager(tmp_path) as cache:
        cache.save("k", FakeSnapshot("old"))
        cache.save("k", FakeSnapshot("new"))
        rec = cache.load("k")
        assert rec is not None and rec.result_id == "new"
        # The replaced result has no key any more; prune drops it even under limits.
        pruned = cache.prune(keep_duration=3600)
        assert [p.result_id for p in pruned] == ["old"]


def test_key_links_record_what_a_key_was_made_of(tmp_path: Path) -> None:
    inputs = [KeyInput("sha256:in0"), KeyInput("sha256:content", ("a.txt", "b/"), content=True)]
    vk = vertex_key("sha256:op", inputs)
    ek = edge_key(vk, 1)
    with CacheManager(tmp_path) as cache:
        cache.save(ek, FakeSnapshot("r"), cachemap_digest="sha256:op", output=1, links=inputs)
        info = cache.links(ek)
    assert info is not None
    op, output, links = info
    assert (op, output) == ("sha256:op", 1)
    assert [(ln.input_key, ln.content, ln.selectors) for ln in links] == [
        ("sha256:in0", False, ()), ("sha256:content", True, ("a.txt", "b/"))]


def test_keys_depend_on_selectors_content_flag_order_and_output() -> None:
    base = vertex_key("sha256:op", [KeyInput("sha256:a"), KeyInput("sha256:b")])
    variants = {
        vertex_key("sha256:op", [KeyInput("sha256:b"), KeyInput("sha256:a")]),
        vertex_key("sha256:op", [KeyInput("sha256:a", ("x",)), KeyInput("sha256:b")]),
        vertex_key("sha256:op", [KeyInput("sha256:a", content=True), KeyInput("sha256:b")]),
        vertex_key("sha256:op2", [KeyInput("sha256:a"), KeyInput("sha256:b")]),
    }
    assert base not in variants and len(variants) == 4
    assert base == vertex_key("sha256:op", [KeyInput("sha256:a"), KeyInput("sha256:b")])
    assert edge_key(base, 0) != edge_key(base, 1)


def test_usage_lists_results_and_in_use_marks(tmp_path: Path) -> None:
    with CacheManager(tmp_path) as cache:
        cache.save("k1", FakeSnapshot("r1", 100), description="one")
        cache.save("k2", FakeSnapshot("r1", 100))
        cache.save("k3", FakeSnapshot("r2", 50), description="two")
        cache.mark_in_use("r2")
        usage = cache.usage()
        by_id = {e.result_id: e for e in usage.entries}
        assert by_id["r1"].keys == 2 and by_id["r1"].reclaimable
        assert by_id["r2"].in_use and not by_id["r2"].reclaimable
        assert (usage.total, usage.reclaimable) == (150, 100)


def test_prune_keeps_in_use_and_honours_storage_and_age(tmp_path: Path) -> None:
    with CacheManager(tmp_path) as cache:
        for i in range(4):
            cache.save(f"k{i}", FakeSnapshot(f"r{i}", 100))
        conn = sqlite3.connect(tmp_path / "cache.db")
        for i in range(4):  # r0 oldest ... r3 newest
            conn.execute("UPDATE results SET last_used = ? WHERE id = ?", (1000 + i, f"r{i}"))
        conn.commit()
        conn.close()
        cache.mark_in_use("r0")
        # Keep 200 bytes: drop least recently used first, never the in-use one.
        assert [p.result_id for p in cache.prune(keep_storage=200)] == ["r1", "r2"]
        assert cache.load("k1") is None and cache.load("k3") is not None
        cache.save("k4", FakeSnapshot("r4", 1))
        # Age limit: r3 was used long ago (its load above made it recent, so age it again).
        conn = sqlite3.connect(tmp_path / "cache.db")
        conn.execute("UPDATE results SET last_used = 1000 WHERE id = 'r3'")
        conn.commit()
        conn.close()
        assert [p.result_id for p in cache.prune(keep_duration=60)] == ["r3"]
        cache.unmark_in_use("r0")
        assert sorted(p.result_id for p in cache.prune()) == ["r0", "r4"]
        assert cache.usage().entries == ()


def test_concurrent_threads_save_and_load_safely(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    with CacheManager(tmp_path) as cache:
        def work(t: int) -> None:
            try:
                for i in range(50):
                    cache.save(f"k{t}-{i}", FakeSnapshot(f"r{t}-{i}"))
                    assert cache.load(f"k{t}-{i}") is not None
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors
        assert len(cache.usage().entries) == 200


def _process_saves(root: str, tag: str) -> None:
    with CacheManager(root) as cache:
        for i in range(50):
            cache.save(f"{tag}-{i}", FakeSnapshot(f"{tag}-r{i}"))


def test_two_processes_share_one_database(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process_saves, args=(str(tmp_path), t)) for t in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with CacheManager(tmp_path) as cache:
        assert len(cache.usage().entries) == 100
        assert cache.load("a-49") is not None and cache.load("b-0") is not None


def test_existing_answers_for_many_keys_at_once(tmp_path: Path) -> None:
    with CacheManager(tmp_path) as cache:
        for i in range(0, 1200, 2):
            cache.save(f"k{i}", FakeSnapshot(f"r{i}"))
        found = cache.existing([f"k{i}" for i in range(1200)])
        assert found == {f"k{i}" for i in range(0, 1200, 2)}
        assert cache.exists("k0") and not cache.exists("k1")
