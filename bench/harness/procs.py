"""Timed command runs with peak-memory accounting.

Memory is measured two ways and the larger is kept: ``wait4``'s ``ru_maxrss`` (the largest
single process of the command's tree that was waited for) and a sampled sum of the
proportional set size (PSS) over the command's process tree plus any daemon trees named
(buildkitd with its runc and containers) or found while it runs (a ``bkpy`` command server
that the command itself started, detached from it), taken every ``SAMPLE_INTERVAL``
seconds. PSS, not RSS, because a forked worker shares most of its pages with its server:
summed RSS would count them twice, PSS counts a page shared by n processes 1/n in each, so
the sum is what the tree really occupies (for processes that share nothing the two agree).

A child's ``ru_maxrss`` starts from this harness's own peak: Linux carries the parent's
high-water mark into a forked (or vforked) child's address space, and exec keeps the
larger of it and the new one. So a figure no larger than the harness's peak once the
command has started says nothing about the command and is left out (the samples still count);
before this rule every cell read at least the harness's ~43 MB, and with the 200 MB base
image of ``bigbase`` generated in memory, 264 MB.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import BenchError

SAMPLE_INTERVAL = 0.05
COMMAND_TIMEOUT = 1800.0  # a hung build is killed and counted as a failure
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

Command = Sequence[str]


@dataclass(frozen=True)
class Measurement:
    seconds: float
    peak_rss_kb: int
    ok: bool
    detail: str = ""  # the failing command and the tail of its log when not ok


def _parents() -> dict[int, int]:
    """pid -> ppid for every process now alive."""
    out: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields start after the last ")".
        fields = stat[stat.rfind(b")") + 2:].split()
        out[int(entry.name)] = int(fields[1])
    return out


def tree_pids(roots: Sequence[int]) -> set[int]:
    """``roots`` and all their living descendants."""
    children: dict[int, list[int]] = {}
    parents = _parents()
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    stack = [r for r in roots if r in parents]
    while stack:
        pid = stack.pop()
        if pid in found:
            continue
        found.add(pid)
        stack.extend(children.get(pid, ()))
    return found


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE_KB
    except (OSError, IndexError, ValueError):
        return 0


def _pss_kb(pid: int) -> int:
    """The process's proportional set size (its RSS where smaps_rollup is unreadable)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except (OSError, IndexError, ValueError):
        pass
    return _rss_kb(pid)


class EnvFinder:
    """Processes whose environment holds ``KEY=VALUE``: a detached server a command started.

    Each pid's environment is read once (environments do not change after exec), so a
    sample costs a directory listing plus the processes new since the last one.
    """

    def __init__(self, key: str, value: str) -> None:
        self.needle = f"{key}={value}".encode()
        self.seen: dict[int, bool] = {}

    def __call__(self) -> list[int]:
        found = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            if pid not in self.seen:
                try:
                    with open(f"/proc/{pid}/environ", "rb") as fh:
                        self.seen[pid] = self.needle in fh.read().split(b"\0")
                except OSError:
                    self.seen[pid] = False
            if self.seen[pid]:
                found.append(pid)
        return found


class TreeSampler:
    """Samples the summed PSS of some process trees in a thread; ``peak_kb`` is the max."""

    def __init__(self, roots: set[int],
                 find: Callable[[], Iterable[int]] | None = None) -> None:
        self.roots = roots  # mutated by the caller as commands start
        self.find = find  # more roots, looked for at every sample
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        roots = set(self.roots)
        if self.find is not None:
            roots.update(self.find())
        total = sum(_pss_kb(pid) for pid in tree_pids(sorted(roots)))
        self.peak_kb = max(self.peak_kb, total)

    def _loop(self) -> None:
        # Also at the start and the end: a command shorter than one interval still counts
        # the daemons it used (a warm server, buildkitd).
        self._sample()
        while not self._stop.wait(SAMPLE_INTERVAL):
            self._sample()
        self._sample()

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def measure(groups: Sequence[Sequence[Command]], *, env: dict[str, str], log: Path,
            daemon_pids: Sequence[int] = (),
            find_daemons: Callable[[], Iterable[int]] | None = None,
            timeout: float = COMMAND_TIMEOUT) -> Measurement:
    """Run ``groups`` one after another, the commands of a group concurrently; time it all.

    Output goes to ``log``. Stops at the first failing command; a command still running
    after ``timeout`` seconds is killed (and so fails). ``find_daemons`` names, at every
    memory sample, processes outside the commands' tree whose memory counts too.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    roots: set[int] = set(daemon_pids)
    max_rss = 0
    with open(log, "ab") as out, TreeSampler(roots, find_daemons) as sampler:
        start = time.perf_counter()
        for group in groups:
            procs = []
            for cmd in group:
                out.write(f"$ {' '.join(cmd)}\n".encode())
                out.flush()
                proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env)
                roots.add(proc.pid)
                procs.append((cmd, proc))
            # Read once every command has started (its exec is past): the mark they took
            # from this process is at most this one (see the docstring).
            floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            failed: Command | None = None
            for cmd, proc in procs:
                # wait4 gives this child's own rusage; Popen is told the exit code after.
                # The watchdog kills rather than polls, so waiting adds no latency.
                watchdog = threading.Timer(timeout, proc.kill)
                watchdog.start()
                try:
                    _, status, usage = os.wait4(proc.pid, 0)
                finally:
                    watchdog.cancel()
                proc.returncode = os.waitstatus_to_exitcode(status)
                roots.discard(proc.pid)
                if usage.ru_maxrss > floor:
                    max_rss = max(max_rss, usage.ru_maxrss)
                if proc.returncode != 0 and failed is None:
                    failed = cmd
            if failed is not None:
                elapsed = time.perf_counter() - start
                out.flush()
                return Measurement(elapsed, max(max_rss, sampler.peak_kb), False,
                                   f"{' '.join(failed)} failed:\n{_tail(log)}")
        elapsed = time.perf_counter() - start
    return Measurement(elapsed, max(max_rss, sampler.peak_kb), True)


def run_quiet(cmd: Command, *, env: dict[str, str] | None = None,
              check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """An untimed helper command (setup, cleanup); raises with its output on failure."""
    proc = subprocess.run(list(cmd), capture_output=True, text=True, env=env,
                          timeout=timeout, check=False, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} exited {proc.returncode}: "
                           f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
    return proc
