"""Benchmark harness: bkpy side by side with real BuildKit (docker's engine).

``run_benchmark(Options(...))`` measures every case x scenario x builder and returns a
:class:`ResultSet` plus run metadata; ``report.write`` turns them into Markdown and JSON.
Entry point: ``python3 bench/run.py`` (see bench/README.md).
"""

from .cases import CASES, Case
from .results import SCENARIOS, ResultSet, Series, judge
from .runner import Options, run_benchmark

__all__ = ["CASES", "SCENARIOS", "Case", "Options", "ResultSet", "Series", "judge",
           "run_benchmark"]
