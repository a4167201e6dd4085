"""The harness itself, run for real on the smallest case (bkpy only, one repetition)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str],
                                                                 Path]:
    if os.geteuid() != 0:
        pytest.fail("the benchmark harness runs containers: run the tests as root")
    tmp = tmp_path_factory.mktemp("bench")
    results = tmp / "results"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--cases", "small", "--quick",
         "--no-buildkit", "--work", str(tmp / "work"), "--results", str(results)],
        capture_output=True, text=True, timeout=120, check=False)
    return proc, results


def test_quick_run_measures_every_scenario_of_the_small_case(
        smoke_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, results = smoke_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((results / "latest.json").read_text())
    ours = {s["scenario"]: s for s in doc["series"] if s["builder"] == "bkpy"}
    assert set(ours) == {"first", "cold", "noop", "change", "push"}
    for scenario, series in ours.items():
        assert series["failures"] == [], scenario
        assert len(series["seconds"]) == 1 and series["seconds"][0] > 0, scenario
        # A Python process with the builder imported holds well over 10 MB.
        assert series["median_peak_kb"] > 10_000, scenario
    assert not any(s["builder"] == "buildkit" for s in doc["series"])
    assert doc["meta"]["buildkit"].startswith("not run")


def test_quick_run_writes_a_markdown_table_with_no_ratio_without_buildkit(
        smoke_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, results = smoke_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = (results / "latest.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| small |")]
    assert ([row.split("|")[2].strip() for row in rows]
            == ["first", "cold", "noop", "change", "push"])
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[2]) > 0 and cells[3] == "-" and cells[4] == "-"
    assert "| no-op rebuild (noop30) | not measured |" in table


def test_unknown_case_is_a_usage_error_without_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--cases", "nosuchcase",
         "--no-buildkit", "--work", str(tmp_path / "w"), "--results", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert "unknown case(s): nosuchcase" in proc.stderr
    assert "Traceback" not in proc.stderr
