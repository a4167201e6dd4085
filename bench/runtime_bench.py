"""Median wall time of `bkpy-runc run` vs `runc run` for a busybox bundle running `true`.

Usage: python3 bench/runtime_bench.py [-n 30]
Runs are alternated so machine load affects both runtimes alike; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN_PY = os.path.join(REPO, "runtime", "bkpy_runc", "__main__.py")
sys.path.insert(0, REPO)

from tests.runtime.bundle import config, make_rootfs, write_bundle  # noqa: E402


def _console_script() -> str:
    """The installed bkpy-runc script itself (a pyenv shim would add a bash+exec hop)."""
    beside = os.path.join(os.path.dirname(sys.executable), "bkpy-runc")
    return beside if os.path.exists(beside) else shutil.which("bkpy-runc") or "bkpy-runc"


def _time(cmd: list[str], cwd: str) -> float:
    start = time.perf_counter()
    res = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, check=False)
    elapsed = time.perf_counter() - start
    if res.returncode != 0:
        raise SystemExit(f"failed ({res.returncode}): {' '.join(cmd)}")
    return elapsed * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=30)
    n = parser.parse_args().n
    import compileall

    # Byte-compile once so PYTHONDONTWRITEBYTECODE environments don't time compilation.
    compileall.compile_dir(os.path.dirname(MAIN_PY), quiet=1)
    with tempfile.TemporaryDirectory(prefix="bkpy-runc-bench-") as tmp:
        rootfs = make_rootfs(tmp)
        bundle = write_bundle(tmp, "bundle", config(rootfs, ["true"]))
        state = os.path.join(tmp, "state")
        variants = {
            "process alone (`rootfs/bin/true`)": lambda i: [os.path.join(rootfs, "bin", "true")],
            "runc run": lambda i: ["runc", "--root", state + "-runc", "run", f"r{i}"],
            "bkpy-runc run (console script)": lambda i: [
                _console_script(), "--root", state, "run", f"b{i}"],
            "bkpy-runc run (`python -S -I __main__.py`)": lambda i: [
                sys.executable, "-S", "-I", MAIN_PY, "--root", state, "run", f"s{i}"],
        }
        times: dict[str, list[float]] = {k: [] for k in variants}
        for i in range(n):
            for name, cmd in variants.items():
                times[name].append(_time(cmd(i), bundle))
    base = statistics.median(times["process alone (`rootfs/bin/true`)"])
    runc = statistics.median(times["runc run"])
    print(f"N={n} per variant, alternating; median wall time in ms\n")
    print("| command | median ms | p90 ms | overhead over process | vs runc |")
    print("|---|---:|---:|---:|---:|")
    for name, values in times.items():
        med = statistics.median(values)
        p90 = sorted(values)[int(0.9 * (len(values) - 1))]
        print(f"| {name} | {med:.1f} | {p90:.1f} | {med - base:+.1f} | {med / runc:.2f}x |")


if __name__ == "__main__":
    main()
