"""Measured series and the goals they are judged by."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from .procs import Measurement

OURS = "bkpy"  # the headline: bkpy as users run it by default
OURS_NO_SERVER = "bkpy-no-server"  # every command a fresh process (BKPY_NO_SERVER=1)
THEIRS = "buildkit"
SCENARIOS = ("first", "cold", "noop", "change", "push")


@dataclass
class Series:
    """All repetitions of one (case, scenario, builder)."""

    case: str
    scenario: str
    builder: str
    samples: list[Measurement] = field(default_factory=list)
    unsupported: str = ""  # why the builder cannot run this scenario, if it cannot

    @property
    def good(self) -> list[Measurement]:
        return [m for m in self.samples if m.ok]

    @property
    def median_s(self) -> float | None:
        good = self.good
        return statistics.median(m.seconds for m in good) if good else None

    @property
    def median_peak_kb(self) -> int | None:
        good = self.good
        return int(statistics.median(m.peak_rss_kb for m in good)) if good else None

    @property
    def failures(self) -> list[str]:
        return [m.detail for m in self.samples if not m.ok]

    def to_json(self) -> dict[str, object]:
        return {"case": self.case, "scenario": self.scenario, "builder": self.builder,
                "seconds": [round(m.seconds, 4) for m in self.good],
                "peak_rss_kb": [m.peak_rss_kb for m in self.good],
                "median_s": self.median_s, "median_peak_kb": self.median_peak_kb,
                "failures": self.failures, "unsupported": self.unsupported}


class ResultSet:
    def __init__(self) -> None:
        self._series: dict[tuple[str, str, str], Series] = {}

    def series(self, case: str, scenario: str, builder: str) -> Series:
        key = (case, scenario, builder)
        if key not in self._series:
            self._series[key] = Series(case, scenario, builder)
        return self._series[key]

    def get(self, case: str, scenario: str, builder: str) -> Series | None:
        return self._series.get((case, scenario, builder))

    def all(self) -> list[Series]:
        return list(self._series.values())

    def rows(self) -> list[tuple[str, str]]:
        """(case, scenario) pairs in first-measured order."""
        seen: dict[tuple[str, str], None] = {}
        for case, scenario, _ in self._series:
            seen[(case, scenario)] = None
        return list(seen)

    def ratio(self, case: str, scenario: str, ours_name: str = OURS) -> float | None:
        """ours / BuildKit median time; None if either is missing."""
        ours, theirs = self.get(case, scenario, ours_name), self.get(case, scenario, THEIRS)
        if ours is None or theirs is None:
            return None
        a, b = ours.median_s, theirs.median_s
        if a is None or b is None or b <= 0:
            return None
        return a / b


@dataclass(frozen=True)
class Goal:
    title: str
    scenario: str
    threshold: float
    case: str | None = None  # None: every case with this scenario must meet it


GOALS = (
    Goal("first build after a boot, every case", "first", 1.0),
    Goal("cold build, every case", "cold", 1.0),
    Goal("no-op rebuild (noop30)", "noop", 0.7, "noop30"),
    Goal("50-step chain, cold (chain50)", "cold", 0.7, "chain50"),
    Goal("one-file change, 20k-file context (context20k)", "change", 0.8, "context20k"),
    Goal("push, every case", "push", 1.0),
)


@dataclass(frozen=True)
class GoalResult:
    goal: Goal
    ratios: dict[str, float]  # case -> ratio

    @property
    def measured(self) -> bool:
        return bool(self.ratios)

    @property
    def worst(self) -> tuple[str, float] | None:
        if not self.ratios:
            return None
        case = max(self.ratios, key=lambda c: self.ratios[c])
        return case, self.ratios[case]

    @property
    def geomean(self) -> float | None:
        if not self.ratios:
            return None
        return math.exp(statistics.fmean(math.log(r) for r in self.ratios.values()))

    @property
    def met(self) -> bool | None:
        worst = self.worst
        return None if worst is None else worst[1] <= self.goal.threshold


def judge(results: ResultSet) -> list[GoalResult]:
    out = []
    for goal in GOALS:
        ratios: dict[str, float] = {}
        for case, scenario in results.rows():
            if scenario != goal.scenario or (goal.case is not None and case != goal.case):
                continue
            r = results.ratio(case, scenario)
            if r is not None:
                ratios[case] = r
        out.append(GoalResult(goal, ratios))
    return out
