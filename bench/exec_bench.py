"""Per-RUN overhead of the executor: run ``true`` in a busybox rootfs, runc vs bkpy-runc.

Each round is one full ``Executor.run``: user resolution, bundle + config.json, generated
hosts/resolv.conf, ``<runtime> run``, output pumping, stub cleanup, bundle removal. The
rootfs is a plain directory (no overlay mount), so this is executor + runtime cost only.

The bundled runtime is measured with and without its fork server (one warm process that
forks each ``run`` instead of a fresh interpreter per RUN).

Run: ``python3 bench/exec_bench.py [--rounds 30] [--runtimes runc,bkpy-runc]`` (as root).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from buildkit_py.errors import UserError
from buildkit_py.executor import ExecRequest, Executor

BUSYBOX = Path("/var/cache/bkpy-test/busybox-amd64")


def make_rootfs(dest: Path) -> Path:
    for d in ("bin", "etc", "proc", "dev", "sys", "tmp"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, dest / "bin/busybox")
    for applet in ("sh", "true"):
        os.symlink("busybox", dest / "bin" / applet)
    (dest / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (dest / "etc/group").write_text("root:x:0:\n")
    return dest


def bench(runtime: str, rounds: int, work: Path, fork_server: bool = True
          ) -> list[float] | str:
    name = f"{runtime}-{fork_server}"
    try:
        executor = Executor(runtime, work / f"state-{name}", fork_server=fork_server)
    except UserError as exc:
        return exc.message
    try:
        rootfs = make_rootfs(work / f"rootfs-{name}")
        req = ExecRequest(rootfs=rootfs, args=["/bin/true"])
        times: list[float] = []
        for i in range(rounds + 2):
            start = time.perf_counter()
            code = executor.run(req, stdout=lambda b: None, stderr=lambda b: None)
            elapsed = time.perf_counter() - start
            if code != 0:
                return f"exit code {code}"
            if i >= 2:  # warm-up rounds (page cache, imports, the fork server's start)
                times.append(elapsed)
        return times
    finally:
        executor.close()


def _raw_runc(rounds: int, work: Path) -> list[float]:
    """``runc run`` of a prepared bundle without the executor, for comparison."""
    bundle = work / "raw"
    make_rootfs(bundle / "rootfs")
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    config = (bundle / "config.json").read_text()
    config = config.replace('"terminal": true', '"terminal": false').replace('"sh"', '"true"')
    (bundle / "config.json").write_text(config)
    times = []
    for i in range(rounds + 2):
        start = time.perf_counter()
        subprocess.run(
            ["runc", "--root", str(work / "raw-state"), "run", "--bundle", str(bundle), f"r{i}"],
            stdin=subprocess.DEVNULL, check=True,
        )  # fmt: skip
        if i >= 2:
            times.append(time.perf_counter() - start)
    return times


def _fmt(times: list[float]) -> str:
    times = sorted(times)
    p90 = times[int(len(times) * 0.9) - 1] if len(times) >= 10 else times[-1]
    return (
        f"median {statistics.median(times) * 1000:7.1f} ms   min {times[0] * 1000:7.1f} ms   "
        f"p90 {p90 * 1000:7.1f} ms   (n={len(times)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--runtimes", default="runc,bkpy-runc")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bkpy-exec-bench-") as tmp:
        work = Path(tmp)
        if shutil.which("runc"):
            print(f"{'runc (raw, no executor)':<40}{_fmt(_raw_runc(args.rounds, work))}")
        for runtime in [r for r in args.runtimes.split(",") if r]:
            for fork_server in (True, False) if runtime == "bkpy-runc" else (True,):
                result = bench(runtime, args.rounds, work, fork_server)
                line = _fmt(result) if isinstance(result, list) else f"unavailable: {result}"
                label = "executor + " + runtime + ("" if fork_server else " (no fork srv)")
                print(f"{label:<40}{line}")


if __name__ == "__main__":
    main()
