"""Benchmark bkpy against the newest BuildKit (buildctl + buildkitd) on bench/cases.

Usage: python3 bench/run.py [--cases small,chain50] [--runs N] [--no-buildkit] [--quick]
                            [--bkpy-no-server]
Writes bench/results/<date>.md and .json (and latest.md/latest.json); see bench/README.md.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import report
from bench.harness.cases import CASES
from bench.harness.results import SCENARIOS
from bench.harness.runner import DEFAULT_RESULTS, DEFAULT_WORK, Options, run_benchmark
from buildkit_py.errors import UserError


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--cases", type=_names, default=None,
                    help=f"comma-separated, default all: {','.join(CASES)}")
    ap.add_argument("--scenarios", type=_names, default=list(SCENARIOS),
                    help=f"comma-separated, default all: {','.join(SCENARIOS)}")
    ap.add_argument("--runs", type=int, default=5, help="repetitions per cell (median shown)")
    ap.add_argument("--quick", action="store_true", help="one repetition (smoke run)")
    ap.add_argument("--no-buildkit", action="store_true", help="measure bkpy only")
    ap.add_argument("--bkpy-no-server", action="store_true",
                    help="also measure bkpy with BKPY_NO_SERVER=1 (a row of its own)")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK,
                    help=f"scratch directory for contexts, state and logs ({DEFAULT_WORK})")
    ap.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                    help="where the Markdown and JSON go")
    args = ap.parse_args(argv)
    opts = Options(cases=args.cases, runs=1 if args.quick else args.runs,
                   buildkit=not args.no_buildkit, bkpy_no_server=args.bkpy_no_server,
                   scenarios=tuple(args.scenarios),
                   work=args.work, results=args.results,
                   command=shlex.join(["python3", "bench/run.py", *sys.argv[1:]]))
    try:
        results, meta = run_benchmark(opts, echo=lambda line: print(line, flush=True))
    except UserError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    md_path, json_path = report.write(results, meta, args.results)
    print()
    print(md_path.read_text(), end="")
    print(f"\nwritten: {md_path} and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
