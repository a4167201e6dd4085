"""Cold builds on an empty builder, with and without an exported registry cache.

The CI story of ``--cache-to`` / ``--cache-from``: machine A builds and pushes its cache to
a registry; machine B starts empty. For each case this measures, on an empty builder:

- ``cold``: the build with no cache at all;
- ``cache-from``: the same build importing A's cache (``mode=max``) from the registry.

Both for bkpy (a fresh ``bkpy build`` process, embedded builder, a new empty ``BKPY_ROOT``
per run) and, unless ``--no-buildkit``, for the referee (the newest BuildKit, started with
``../shared/tools/buildkit-referee start``; ``buildctl prune --all`` before each run).
Base images come from a throwaway ``docker-registry`` on 127.0.0.1, so both builders pull
the same base. Medians of ``--runs``; bkpy and BuildKit alternate within each repetition.

    python3 bench/cache_bench.py [--cases multistage,layer300] [--runs 3] [--no-buildkit]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import cases as case_mod
from bench.harness.builders import _bkpy_command
from bench.harness.images import prepare_base_images
from bench.harness.registry import LocalRegistry

REFEREE_SOCK = "unix:///run/buildkit-referee/buildkitd.sock"


def _run(cmd: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> float:
    started = time.monotonic()
    out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    took = time.monotonic() - started
    if log is not None:
        log.write_bytes(out.stdout)
    if out.returncode != 0:
        sys.exit(f"failed ({out.returncode}): {' '.join(cmd)}\n"
                 f"{out.stdout.decode(errors='replace')[-2000:]}")
    return took


def _buildctl() -> str | None:
    found = shutil.which("buildctl")
    if found:
        return found
    candidate = Path("/var/tmp/buildkit-referee/bin/buildctl")
    return str(candidate) if candidate.is_file() else None


class Bkpy:
    name = "bkpy"

    def __init__(self, work: Path) -> None:
        self.cmd = _bkpy_command()
        self.work = work

    def _env(self, root: Path) -> dict[str, str]:
        return {**os.environ, "BKPY_ROOT": str(root)}

    def build(self, ctx: Path, cache_from: str | None, cache_to: str | None, log: Path) -> float:
        root = self.work / "bkpy-root"
        shutil.rmtree(root, ignore_errors=True)
        args = [*self.cmd, "build", "--progress", "plain", "--network", "none"]
        if cache_from:
            args += ["--cache-from", f"type=registry,ref={cache_from}"]
        if cache_to:
            args += ["--cache-to", f"type=registry,ref={cache_to},mode=max"]
        try:
            return _run([*args, str(ctx)], self._env(root), log)
        finally:
            shutil.rmtree(root, ignore_errors=True)


class Referee:
    name = "buildkit"

    def __init__(self, buildctl: str) -> None:
        self.buildctl = [buildctl, "--addr", REFEREE_SOCK]

    def build(self, ctx: Path, cache_from: str | None, cache_to: str | None, log: Path) -> float:
        _run([*self.buildctl, "prune", "--all"])
        args = [*self.buildctl, "build", "--progress", "plain", "--frontend", "dockerfile.v0",
                "--local", f"context={ctx}", "--local", f"dockerfile={ctx}",
                "--opt", "force-network-mode=none"]
        if cache_from:
            args += ["--import-cache", f"type=registry,ref={cache_from}"]
        if cache_to:
            args += ["--export-cache", f"type=registry,ref={cache_to},mode=max"]
        return _run(args, None, log)


def _push_base(work: Path, registry: str) -> None:
    for image in prepare_base_images(work / "images", toolchain=False):
        if image.tag != "busybox:latest":
            continue
        subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false",
                        f"docker-archive:{image.archive}", f"docker://{registry}/busybox:latest"],
                       check=True)


def _context(case: case_mod.Case, work: Path, registry: str) -> Path:
    ctx = case_mod.prepare_context(case, work / "contexts")
    dockerfile = (ctx / "Dockerfile").read_text()
    (ctx / "Dockerfile").write_text(dockerfile.replace("FROM busybox:latest",
                                                       f"FROM {registry}/busybox:latest"))
    return ctx


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="multistage,layer300,chain50")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-buildkit", action="store_true")
    ap.add_argument("--work", type=Path, default=Path("/var/tmp/bkpy-cache-bench"))
    opts = ap.parse_args()
    work: Path = opts.work
    work.mkdir(parents=True, exist_ok=True)
    builders: list[Bkpy | Referee] = [Bkpy(work)]
    if not opts.no_buildkit:
        buildctl = _buildctl()
        if buildctl is None:
            sys.exit("no buildctl: run ../shared/tools/buildkit-referee build and start, "
                     "or pass --no-buildkit")
        builders.append(Referee(buildctl))
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    rows: list[tuple[str, str, float, float]] = []
    with LocalRegistry(work / "registry") as reg:
        _push_base(work, reg.host)
        for case in case_mod.select(opts.cases.split(",")):
            if case.multi_platform or case.base_images != ("busybox:latest",):
                print(f"skipping {case.name}: needs other base images")
                continue
            ctx = _context(case, work, reg.host)
            times: dict[tuple[str, str], list[float]] = {}
            for b in builders:  # machine A: build once, export the cache
                ref = f"{reg.host}/cache/{b.name}-{case.name}:latest"
                b.build(ctx, None, ref, logs / f"{case.name}-{b.name}-export.log")
            for i in range(opts.runs):
                order = builders if i % 2 == 0 else builders[::-1]
                for b in order:
                    ref = f"{reg.host}/cache/{b.name}-{case.name}:latest"
                    for scenario, cache_from in (("cold", None), ("cache-from", ref)):
                        took = b.build(ctx, cache_from, None,
                                       logs / f"{case.name}-{b.name}-{scenario}-{i}.log")
                        times.setdefault((b.name, scenario), []).append(took)
                        print(f"  [{case.name}] run {i + 1} {b.name:8} {scenario:10} {took:.2f}s",
                              flush=True)
            for (name, scenario), values in times.items():
                rows.append((case.name, f"{name} {scenario}", statistics.median(values),
                             min(values)))
    _report(rows, builders, lambda line: print(line))


def _report(rows: list[tuple[str, str, float, float]], builders: list[Bkpy | Referee],
            echo: Callable[[str], None]) -> None:
    echo("\n| case | builder, scenario | median s | min s |")
    echo("|---|---|---|---|")
    for case, what, median, least in rows:
        echo(f"| {case} | {what} | {median:.2f} | {least:.2f} |")
    if len(builders) > 1:
        med = {(c, w): m for c, w, m, _ in rows}
        echo("\n| case | bkpy/BuildKit cold | bkpy/BuildKit cache-from |")
        echo("|---|---|---|")
        for case in dict.fromkeys(c for c, *_ in rows):
            ratios = [med[(case, f"bkpy {s}")] / med[(case, f"buildkit {s}")]
                      for s in ("cold", "cache-from")]
            echo(f"| {case} | {ratios[0]:.2f} | {ratios[1]:.2f} |")


if __name__ == "__main__":
    main()
