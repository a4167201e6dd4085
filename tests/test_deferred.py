"""Upkeep after the answer (buildkit_py.deferred): queued only while collecting, run in
order, failures swallowed; and a command that opens the builder again in a collecting
process first closes the one it left open (else it would wait on its own lock)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildkit_py import deferred
from tests.images import write_busybox_layout


@pytest.fixture
def collecting() -> Iterator[None]:
    deferred.collect()
    yield
    deferred.run_collected()


def test_work_runs_at_once_unless_collected() -> None:
    done: list[int] = []
    deferred.later(lambda: done.append(1))
    assert done == [1]


def test_collected_work_runs_in_order_and_a_failure_is_not_raised(collecting: None) -> None:
    done: list[str] = []

    def fail() -> None:
        raise OSError("disk gone")

    deferred.later(lambda: done.append("a"))
    deferred.later(fail)
    deferred.later(lambda: done.append("b"))
    assert done == []
    assert deferred.flush() == 3 and done == ["a", "b"]
    deferred.later(lambda: done.append("c"))  # still collecting after a flush
    assert done == ["a", "b"]
    assert deferred.run_collected() == 1 and done == ["a", "b", "c"]
    deferred.later(lambda: done.append("d"))  # no longer collecting
    assert done == ["a", "b", "c", "d"]


def test_a_second_builder_in_a_collecting_process_does_not_wait_on_the_first(
        tmp_path: Path) -> None:
    layout = write_busybox_layout(tmp_path / "layout", ("amd64",))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo hi > /x\n")
    script = textwrap.dedent(f"""
        from buildkit_py import deferred
        from buildkit_py.cli.main import main
        deferred.collect()  # as a served command does
        for args in (["image", "import", {str(layout)!r}, "busybox:latest"],
                     ["build", "-q", {str(ctx)!r}], ["du"]):
            try:
                main(args)
            except SystemExit as exc:
                assert not exc.code, args
        assert deferred.run_collected() == 0  # du's builder closed the build's first
        print("all three ran")
    """)
    env = dict(os.environ, BKPY_ROOT=str(tmp_path / "state"))
    p = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "all three ran" in p.stdout


def test_a_build_that_breaks_leaves_the_root_for_recovery_and_a_good_one_releases_it(
        tmp_path: Path) -> None:
    """Deferring the builder's close must not change what its owner records: a build
    ended by an exception that is not a user error (an interrupt, a bug) leaves the
    ownership record, so the next owner cleans up; a build that succeeds clears it."""
    script = textwrap.dedent(f"""
        from pathlib import Path
        from buildkit_py import deferred
        from buildkit_py.client import embedded
        from buildkit_py.config import load_config
        deferred.collect()  # as a served command does
        root = Path({str(tmp_path / "state")!r})
        lock = root / "embedded.lock"

        def boom(*args, **kwargs):
            raise RuntimeError("a bug in the build")

        real = embedded.recorded
        embedded.recorded = boom
        client = embedded.EmbeddedClient(load_config())
        try:
            client.build(None, print)
        except RuntimeError:
            pass
        assert lock.read_text().startswith("bkpy pid"), repr(lock.read_text())
        embedded.recorded = lambda *args: "built"
        assert client.build(None, print) == "built"
        assert lock.read_text().startswith("bkpy pid")  # still owned until the upkeep
        deferred.run_collected()
        assert lock.read_text() == "", repr(lock.read_text())
        print("ok")
    """)
    env = dict(os.environ, BKPY_ROOT=str(tmp_path / "state"))
    p = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().endswith("ok")
