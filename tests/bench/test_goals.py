"""Ratios, medians and goal verdicts of the report."""

from __future__ import annotations

import pytest

from bench.harness.procs import Measurement
from bench.harness.report import markdown
from bench.harness.results import OURS, OURS_NO_SERVER, THEIRS, ResultSet, judge


def _results(times: dict[tuple[str, str, str], list[float]]) -> ResultSet:
    rs = ResultSet()
    for (case, scenario, builder), secs in times.items():
        rs.series(case, scenario, builder).samples.extend(
            Measurement(s, 100_000, True) for s in secs)
    return rs


def test_ratio_is_ours_over_buildkit_of_the_medians() -> None:
    rs = _results({("small", "cold", OURS): [1.0, 9.0, 2.0],
                   ("small", "cold", THEIRS): [4.0, 4.0, 100.0]})
    assert rs.ratio("small", "cold") == pytest.approx(0.5)


def test_failed_repetitions_are_left_out_of_the_median() -> None:
    rs = _results({("small", "cold", OURS): [2.0], ("small", "cold", THEIRS): [1.0]})
    rs.series("small", "cold", OURS).samples.append(Measurement(50.0, 1, False, "x failed"))
    assert rs.ratio("small", "cold") == pytest.approx(2.0)
    assert rs.series("small", "cold", OURS).failures == ["x failed"]


def test_goal_over_every_case_fails_on_its_worst_case() -> None:
    rs = _results({("a", "cold", OURS): [0.5], ("a", "cold", THEIRS): [1.0],
                   ("b", "cold", OURS): [1.2], ("b", "cold", THEIRS): [1.0]})
    cold = next(g for g in judge(rs) if g.goal.title.startswith("cold"))
    assert cold.worst == ("b", pytest.approx(1.2))
    assert cold.met is False
    assert cold.geomean == pytest.approx((0.5 * 1.2) ** 0.5)


def test_single_case_goal_ignores_other_cases_and_passes_under_threshold() -> None:
    rs = _results({("noop30", "noop", OURS): [0.6], ("noop30", "noop", THEIRS): [1.0],
                   ("small", "noop", OURS): [5.0], ("small", "noop", THEIRS): [1.0]})
    noop = next(g for g in judge(rs) if g.goal.case == "noop30")
    assert noop.ratios == {"noop30": pytest.approx(0.6)}
    assert noop.met is True


def test_markdown_marks_unsupported_cells_and_unmeasured_goals() -> None:
    rs = _results({("twoplatform", "push", OURS): [3.0]})
    rs.series("twoplatform", "push", THEIRS).unsupported = "not supported"
    meta = {"date": "2026-01-01 00:00:00", "command": "x", "runs": 1, "machine": "m",
            "bkpy": "0", "buildkit": "b"}
    table = markdown(rs, meta)
    assert "| twoplatform | push | 3.00 | n/a | - | 98 | - |" in table
    assert "| push, every case | not measured | <= 1.0 | - |" in table


def test_markdown_adds_the_no_server_columns_only_when_that_row_was_measured() -> None:
    meta = {"date": "2026-01-01 00:00:00", "command": "x", "runs": 1, "machine": "m",
            "bkpy": "0", "buildkit": "b"}
    rs = _results({("small", "noop", OURS): [0.2], ("small", "noop", THEIRS): [0.4]})
    assert "no-server" not in markdown(rs, meta)
    rs.series("small", "noop", OURS_NO_SERVER).samples.append(Measurement(0.6, 100_000, True))
    table = markdown(rs, meta)
    assert "| small | noop | 0.20 | 0.40 | 0.50 | 98 | 98 | 0.60 | 1.50 | 98 |" in table
    assert rs.ratio("small", "noop", OURS_NO_SERVER) == pytest.approx(1.5)
