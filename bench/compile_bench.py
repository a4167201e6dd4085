"""Compile time of the LLB for a large multi-stage Dockerfile (parse + convert + marshal).

    python3 bench/compile_bench.py [--stages 200] [--runs 7]

Prints the median of each phase; no builder state is touched (FROM scratch and stage bases only).
"""

from __future__ import annotations

import argparse
import statistics
import time


def dockerfile(stages: int) -> str:
    lines = ["ARG BASE=scratch", "FROM ${BASE} AS s0", "COPY a.txt /a.txt"]
    for i in range(1, stages):
        lines += [
            f"FROM s{i - 1} AS s{i}",
            f"ENV STEP{i}={i}",
            f"WORKDIR /w{i}",
            f"COPY --from=s{max(0, i - 2)} /a.txt /copy{i}.txt",
            f"RUN echo {i} > /step{i}",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stages", type=int, default=200)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()

    from buildkit_py.frontend.dockerfile import load_dockerfile
    from buildkit_py.frontend.dockerfile.convert import ConvertOptions, convert

    text = dockerfile(args.stages)
    phases: dict[str, list[float]] = {"load": [], "convert+marshal": [], "total": []}
    vertices = 0
    for _ in range(args.runs):
        t0 = time.perf_counter()
        df = load_dockerfile(text)
        t1 = time.perf_counter()
        result = convert(df, ConvertOptions())
        t2 = time.perf_counter()
        vertices = len(list(result.definition.vertices()))
        phases["load"].append(t1 - t0)
        phases["convert+marshal"].append(t2 - t1)
        phases["total"].append(t2 - t0)
    print(f"| {args.stages} stages, {len(text.splitlines())} lines, {vertices} vertices "
          f"| median of {args.runs} |")
    print("|---|---|")
    for name, values in phases.items():
        print(f"| {name} | {statistics.median(values) * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
