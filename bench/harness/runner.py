"""One harness run: every case x scenario x builder, repetitions rotating the builders."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import platform
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildkit_py.errors import UsageError

from . import cases as case_mod
from .base_registry import point_at_registry, push_base_images
from .builders import BkpyBuilder, Builder, BuildkitBuilder
from .buildkitd import PrivateBuildkitd, find_binaries
from .errors import BenchError
from .images import ToolchainMissing, prepare_base_images
from .procs import Measurement
from .registry import LocalRegistry
from .results import SCENARIOS, ResultSet

REPO = Path(__file__).resolve().parents[2]
DEFAULT_WORK = Path("/var/tmp/bkpy-bench")
DEFAULT_RESULTS = REPO / "bench" / "results"


@dataclass
class Options:
    cases: list[str] | None = None
    runs: int = 5
    buildkit: bool = True
    bkpy_no_server: bool = False  # also measure bkpy with BKPY_NO_SERVER=1 (its own row)
    scenarios: tuple[str, ...] = SCENARIOS
    work: Path = DEFAULT_WORK
    results: Path = DEFAULT_RESULTS
    command: str = ""
    notes: list[str] = field(default_factory=list)


def _ensure_tcc() -> str | None:
    """None when tcc is there (installing Debian's tcc if needed), else why not."""
    if shutil.which("tcc"):
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    proc = subprocess.run(["apt-get", "install", "-y", "tcc"], capture_output=True, text=True,
                          env=env, check=False, stdin=subprocess.DEVNULL)
    return None if shutil.which("tcc") else f"tcc unavailable: {proc.stderr.strip()[-200:]}"


def _git_rev() -> str:
    proc = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"],
                           capture_output=True, text=True, check=False).stdout.strip()
    rev = proc.stdout.strip() or "unknown"
    return rev + ("+dirty" if dirty else "")


def _run_builder(builder: Builder, case: case_mod.Case, ctx: Path, opts: Options,
                 results: ResultSet, rep: int, counter: itertools.count[int],
                 echo: Callable[[str], None]) -> None:
    """first, then cold, then no-op, then one-file change, then push, on one builder."""
    logs = opts.work / "logs"

    def log(scenario: str) -> Path:
        path = logs / f"{case.name}-{scenario}-{builder.name}-{rep}.log"
        path.unlink(missing_ok=True)
        return path

    def record(scenario: str, m: Measurement) -> bool:
        if scenario in opts.scenarios:
            results.series(case.name, scenario, builder.name).samples.append(m)
            state = f"{m.seconds:7.2f}s {m.peak_rss_kb / 1024:6.0f} MB" if m.ok else "FAILED"
            echo(f"  [{case.name}] run {rep + 1}/{opts.runs} {builder.name:8} "
                 f"{scenario:6} {state}")
        return m.ok

    if "first" in opts.scenarios:
        m = builder.first(case, ctx, log("first"))
        if m is None:
            results.series(case.name, "first", builder.name).unsupported = "same as cold"
        else:
            record("first", m)
    builder.reset(case)
    if not record("cold", builder.build(case, ctx, log("cold"))):
        return
    if "noop" in opts.scenarios:
        record("noop", builder.build(case, ctx, log("noop")))
    if "change" in opts.scenarios:
        case_mod.change_one_file(case, ctx, next(counter))
        record("change", builder.build(case, ctx, log("change")))
    if "push" in opts.scenarios:
        with LocalRegistry(opts.work / "registry") as registry:
            m = builder.push(case, ctx, registry.host, log("push"))
        if m is None:
            results.series(case.name, "push", builder.name).unsupported = "not supported"
        else:
            record("push", m)


def run_benchmark(opts: Options, echo: Callable[[str], None] = print) -> tuple[ResultSet,
                                                                              dict[str, Any]]:
    if opts.runs < 1:
        raise UsageError("--runs must be at least 1")
    unknown = [s for s in opts.scenarios if s not in SCENARIOS]
    if unknown:
        raise UsageError(f"unknown scenario(s): {', '.join(unknown)}",
                         hint=f"choose from {', '.join(SCENARIOS)}")
    selected = case_mod.select(opts.cases)
    notes = list(opts.notes)
    if any("toolchain:latest" in c.base_images for c in selected):
        reason = _ensure_tcc()
        if reason:
            notes.append(f"cprogram skipped: {reason}")
            selected = [c for c in selected if "toolchain:latest" not in c.base_images]
    opts.work.mkdir(parents=True, exist_ok=True)
    try:
        images = prepare_base_images(
            opts.work / "images",
            toolchain=any("toolchain:latest" in c.base_images for c in selected),
            bigbase=any("bigbase:latest" in c.base_images for c in selected))
    except ToolchainMissing as exc:
        raise BenchError(exc.message, hint=exc.hint) from None

    daemon: PrivateBuildkitd | None = None
    buildkit_version = "not run (--no-buildkit)"
    if opts.buildkit:
        found = find_binaries()
        if isinstance(found, str):
            notes.append(f"BuildKit not run, bkpy only: {found}")
            buildkit_version = "unavailable"
        else:
            daemon = PrivateBuildkitd(opts.work, *found)
    results = ResultSet()
    builders: list[Builder] = []
    try:
        builders.append(BkpyBuilder(opts.work))
        if opts.bkpy_no_server:
            builders.append(BkpyBuilder(opts.work, server=False))
        if daemon is not None:
            echo("starting the private buildkitd")
            daemon.start()
            buildkit_version = (f"buildkitd {daemon.version()} (the referee's build, "
                                f"{daemon.buildkitd}), OCI worker, overlayfs, runc")
            builders.append(BuildkitBuilder(daemon, opts.work))
        with LocalRegistry(opts.work / "base-registry") as base:
            push_base_images(base, images)
            counter = itertools.count(1)
            for case in selected:
                echo(f"{case.name}: {case.summary}")
                ctx = case_mod.prepare_context(case, opts.work / "contexts")
                point_at_registry(ctx / "Dockerfile", base.host, images)
                for rep in range(opts.runs):
                    # Rotate who goes first so drift in machine load hits all alike.
                    shift = rep % len(builders)
                    for builder in builders[shift:] + builders[:shift]:
                        _run_builder(builder, case, ctx, opts, results, rep, counter, echo)
    finally:
        for builder in builders:
            builder.close()
        if daemon is not None:
            daemon.close()
    from buildkit_py import __version__ as bkpy_version

    meta = {
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
        "command": opts.command, "runs": opts.runs,
        "cases": [c.name for c in selected], "scenarios": list(opts.scenarios),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}",
        "bkpy": f"{bkpy_version} ({_git_rev()}) as users run it by default"
                + (", and with BKPY_NO_SERVER=1" if opts.bkpy_no_server else ""),
        "buildkit": buildkit_version,
        "notes": notes,
    }
    return results, meta
