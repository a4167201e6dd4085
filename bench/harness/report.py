"""The Markdown table and the JSON document of one harness run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .results import OURS, OURS_NO_SERVER, THEIRS, GoalResult, ResultSet, Series, judge


def _secs(series: Series | None) -> str:
    if series is None:
        return "-"
    if series.unsupported:
        return "n/a"
    value = series.median_s
    if value is None:
        return "FAILED" if series.failures else "-"
    return f"{value:.2f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _mb(series: Series | None) -> str:
    kb = series.median_peak_kb if series is not None else None
    return "-" if kb is None else f"{kb / 1024:.0f}"


def _goal_row(g: GoalResult) -> str:
    if not g.measured:
        return f"| {g.goal.title} | not measured | <= {g.goal.threshold} | - |"
    worst = g.worst
    assert worst is not None
    if g.goal.case is not None:
        measured = f"{worst[1]:.2f}"
    else:
        measured = f"geomean {g.geomean:.2f}, worst {worst[1]:.2f} ({worst[0]})"
    return f"| {g.goal.title} | {measured} | <= {g.goal.threshold} | {'yes' if g.met else 'NO'} |"


def markdown(results: ResultSet, meta: dict[str, Any]) -> str:
    lines = [f"# bkpy vs BuildKit, {meta['date']}", "",
             f"Command: `{meta['command']}`  ",
             f"Runs per cell: {meta['runs']} (median shown); machine: {meta['machine']}  ",
             f"bkpy {meta['bkpy']}; BuildKit: {meta['buildkit']}", ""]
    lines += [f"> {note}" for note in meta.get("notes", [])]
    if meta.get("notes"):
        lines.append("")
    no_server = any(s.builder == OURS_NO_SERVER for s in results.all())
    extra = (" bkpy no-server s | no-server/BuildKit | no-server peak MB |", "---:|---:|---:|")
    lines += ["| case | scenario | bkpy s | BuildKit s | ours/BuildKit | bkpy peak MB |"
              " BuildKit peak MB |" + (extra[0] if no_server else ""),
              "|---|---|---:|---:|---:|---:|---:|" + (extra[1] if no_server else "")]
    for case, scenario in results.rows():
        ours, theirs = results.get(case, scenario, OURS), results.get(case, scenario, THEIRS)
        row = (f"| {case} | {scenario} | {_secs(ours)} | {_secs(theirs)} | "
               f"{_ratio(results.ratio(case, scenario))} | {_mb(ours)} | {_mb(theirs)} |")
        if no_server:
            fresh = results.get(case, scenario, OURS_NO_SERVER)
            row += (f" {_secs(fresh)} | {_ratio(results.ratio(case, scenario, OURS_NO_SERVER))}"
                    f" | {_mb(fresh)} |")
        lines.append(row)
    goals = judge(results)
    lines += ["", "| goal (bkpy/BuildKit, the headline column) | measured | target | met |",
              "|---|---|---|---|"]
    lines += [_goal_row(g) for g in goals]
    failures = [s for s in results.all() if s.failures]
    if failures:
        lines += ["", "Failures:"]
        for s in failures:
            first = s.failures[0].splitlines()[0] if s.failures[0] else ""
            lines.append(f"- {s.case}/{s.scenario}/{s.builder}: {len(s.failures)} failed; "
                         f"{first}")
    return "\n".join(lines) + "\n"


def document(results: ResultSet, meta: dict[str, Any]) -> dict[str, Any]:
    goals = [{"goal": g.goal.title, "scenario": g.goal.scenario, "case": g.goal.case,
              "threshold": g.goal.threshold, "ratios": g.ratios, "met": g.met}
             for g in judge(results)]
    return {"meta": meta, "series": [s.to_json() for s in results.all()],
            "ratios": {f"{c}/{s}": results.ratio(c, s) for c, s in results.rows()},
            "ratios_no_server": {f"{c}/{s}": results.ratio(c, s, OURS_NO_SERVER)
                                 for c, s in results.rows()},
            "goals": goals}


def write(results: ResultSet, meta: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """``<stamp>.md`` and ``<stamp>.json`` plus ``latest.md``/``latest.json`` copies."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = meta["date"].replace(":", "").replace(" ", "T")
    md, doc = markdown(results, meta), json.dumps(document(results, meta), indent=2)
    md_path, json_path = out_dir / f"{stamp}.md", out_dir / f"{stamp}.json"
    for path, text in ((md_path, md), (json_path, doc), (out_dir / "latest.md", md),
                       (out_dir / "latest.json", doc)):
        path.write_text(text)
    return md_path, json_path
