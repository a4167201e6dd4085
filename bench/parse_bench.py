"""Parse-speed benchmark: generated 1k/5k/20k-line Dockerfiles, median of several runs.

Run: ``python3 bench/parse_bench.py [--runs N]``. Prints a Markdown table with the median
time of ``parse_dockerfile`` (parse tree) and of ``load_dockerfile`` (parse + typed model).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from buildkit_py.frontend.dockerfile import load_dockerfile, parse_dockerfile

_STAGE = [
    "# {name} builds part {n} of the project",
    "FROM --platform=$BUILDPLATFORM golang:1.22-alpine AS {name}",
    "ARG VERSION=1.{n}.0",
    'LABEL org.opencontainers.image.version="$VERSION" maintainer="dev team <dev@example.com>"',
    "ENV GOPATH=/go PATH=/go/bin:$PATH CGO_ENABLED=0",
    "WORKDIR /src/{name}",
    "COPY --chown=1000:1000 --chmod=0644 go.mod go.sum ./",
    "RUN --mount=type=cache,target=/go/pkg/mod \\",
    "    --mount=type=secret,id=netrc,target=/root/.netrc \\",
    "    go mod download && \\",
    "    go mod verify",
    "COPY . .",
    'RUN ["go", "build", "-o", "/out/{name}", "./cmd/{name}"]',
    "RUN <<EOF",
    "set -e",
    "echo building {name}",
    "EOF",
    "EXPOSE 80{n}/tcp 443",
    "USER 1000:1000",
    "HEALTHCHECK --interval=30s --timeout=3s CMD wget -q -O- http://localhost/ || exit 1",
    'CMD ["/out/{name}", "--serve"]',
    "",
]


def generate(lines: int) -> str:
    """A multi-stage Dockerfile of about ``lines`` lines mixing every common instruction."""
    out = ["# syntax=docker/dockerfile:1", "ARG BASE=alpine:3.20"]
    n = 0
    while len(out) < lines:  # whole stages only, so heredocs are never cut
        name = f"stage{n}"
        out.extend(t.format(name=name, n=n) for t in _STAGE)
        n += 1
    return "\n".join(out) + "\n"


def _median(fn: Callable[[str], object], data: str, runs: int) -> tuple[float, float]:
    """Median wall-clock and median CPU seconds of ``fn(data)``."""
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(data)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
    return statistics.median(wall), statistics.median(cpu)


def cli_start_to_parse(runs: int) -> float:
    """Median wall time of ``bkpy dockerfile ast`` on a small file in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "Dockerfile")
        with open(path, "w") as f:
            f.write(generate(40))
        cmd = [sys.executable, "-m", "buildkit_py", "dockerfile", "ast", path]
        subprocess.run(cmd, check=True, capture_output=True)  # warm the table cache
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    parse_dockerfile("FROM scratch\n")  # build/load the parser outside the timings
    print(
        "| lines | parse wall (median s) | parse CPU (median s) | parse + typed load wall |"
        " parse + typed load CPU | µs/line (parse CPU) |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for size in (1000, 5000, 20000):
        data = generate(size)
        size = data.count("\n")
        parse_wall, parse_cpu = _median(parse_dockerfile, data, args.runs)
        load_wall, load_cpu = _median(load_dockerfile, data, args.runs)
        print(
            f"| {size:,} | {parse_wall:.4f} | {parse_cpu:.4f} | {load_wall:.4f} | {load_cpu:.4f}"
            f" | {parse_cpu / size * 1e6:.1f} |"
        )
    print()
    print(f"CLI start to parse (`bkpy dockerfile ast`, 40 lines): {cli_start_to_parse(5):.3f} s")
    print(f"(interpreter alone: {_python_start(5):.3f} s)")


def _python_start(runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


if __name__ == "__main__":
    main()
