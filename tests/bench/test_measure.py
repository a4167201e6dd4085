"""Timing and peak-memory accounting of benchmarked commands."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bench.harness.procs import EnvFinder, measure, tree_pids

ALLOC = "import time; b = bytearray({mb} * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); " \
        "time.sleep(0.3)"


def test_peak_memory_counts_a_child_that_allocates_80_mb(tmp_path: Path) -> None:
    m = measure([[[sys.executable, "-c", ALLOC.format(mb=80)]]], env={}, log=tmp_path / "l")
    assert m.ok
    assert 80 * 1024 <= m.peak_rss_kb < 400 * 1024


def test_concurrent_commands_are_summed_in_the_sampled_peak(tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", ALLOC.format(mb=60)]
    m = measure([[cmd, cmd]], env={}, log=tmp_path / "l")
    assert m.ok
    # wait4 alone would give ~60 MB (one process); the tree sampler sees both at once.
    assert m.peak_rss_kb >= 115 * 1024


FORKED = ("import os, time; b = bytearray(80 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); "
          "pid = os.fork(); time.sleep(0.5); os._exit(0) if pid == 0 else os.waitpid(pid, 0)")


def test_pages_a_fork_shares_are_counted_once(tmp_path: Path) -> None:
    # a server and its forked worker: summed RSS would be ~160 MB, their PSS ~80 MB
    m = measure([[[sys.executable, "-c", FORKED]]], env={}, log=tmp_path / "l")
    assert m.ok
    assert 80 * 1024 <= m.peak_rss_kb < 130 * 1024


def test_the_harness_own_peak_is_not_taken_for_a_commands(tmp_path: Path) -> None:
    # A child's ru_maxrss starts from its parent's high-water mark: with 200 MB touched
    # here first, a bare `true` used to measure at least that.
    held = bytearray(200 * 1024 * 1024)
    held[::4096] = b"x" * len(held[::4096])
    m = measure([[["true"]]], env={}, log=tmp_path / "l")
    del held
    assert m.ok
    assert m.peak_rss_kb < 50 * 1024


def test_groups_run_in_sequence_and_time_adds_up(tmp_path: Path) -> None:
    nap = [sys.executable, "-c", "import time; time.sleep(0.2)"]
    m = measure([[nap], [nap]], env={}, log=tmp_path / "l")
    assert m.ok and m.seconds >= 0.4


def test_a_failing_command_stops_the_measurement_and_reports_its_output(
        tmp_path: Path) -> None:
    fail = [sys.executable, "-c", "import sys; print('boom here'); sys.exit(3)"]
    never = [sys.executable, "-c", "open(sys.argv[1], 'w')", str(tmp_path / "ran")]
    m = measure([[fail], [never]], env={}, log=tmp_path / "l")
    assert not m.ok
    assert "boom here" in m.detail
    assert not (tmp_path / "ran").exists()


def test_tree_pids_includes_grandchildren(tmp_path: Path) -> None:
    import os
    import subprocess

    inner = "import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', " \
            "'import time; time.sleep(5)']); print(p.pid, flush=True); time.sleep(5)"
    outer = subprocess.Popen([sys.executable, "-c", inner], stdout=subprocess.PIPE, text=True)
    try:
        assert outer.stdout is not None
        grandchild = int(outer.stdout.readline())
        pids = tree_pids([os.getpid()])
        assert {outer.pid, grandchild} <= pids
    finally:
        outer.kill()
        outer.wait()


def test_a_command_running_past_the_timeout_is_killed_and_fails(tmp_path: Path) -> None:
    hang = [sys.executable, "-c", "import time; time.sleep(30)"]
    m = measure([[hang]], env={}, log=tmp_path / "l", timeout=0.5)
    assert not m.ok
    assert m.seconds < 10


def test_a_detached_process_found_by_its_environment_counts_in_the_peak(tmp_path: Path) -> None:
    # A server the command starts in a new session leaves the command's tree, as a bkpy
    # command server does; EnvFinder still finds it by the variable it inherited.
    ready = tmp_path / "ready"
    server = tmp_path / "server.py"
    server.write_text(ALLOC.format(mb=80).replace("time.sleep(0.3)", "")
                      + f"open({str(ready)!r}, 'w').close(); time.sleep(2)\n")
    starter = tmp_path / "starter.py"
    starter.write_text(
        "import os, subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, {str(server)!r}], start_new_session=True)\n"
        f"while not os.path.exists({str(ready)!r}):\n    time.sleep(0.02)\n"
        "time.sleep(0.4)\n")
    env = {**os.environ, "BENCH_TEST_MARK": str(tmp_path)}
    m = measure([[[sys.executable, str(starter)]]], env=env, log=tmp_path / "l",
                find_daemons=EnvFinder("BENCH_TEST_MARK", str(tmp_path)))
    assert m.ok
    assert m.peak_rss_kb > 80 * 1024
