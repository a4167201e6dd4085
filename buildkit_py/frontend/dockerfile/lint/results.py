"""A lint run's result as BuildKit's ``frontend.lint`` subrequest returns it, and the two
ways buildx shows it: the JSON document (``--call check,format=json``) and the
``Check complete, N warnings have been found!`` screen.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from buildkit_py.errors import SourceLocation
from buildkit_py.frontend.dockerfile.lint.linter import LintWarning


def line_ranges(location: SourceLocation | None) -> list[dict[str, Any]]:
    """BuildKit's ranges of an instruction: one per line it spans (heredoc and continuation
    lines included)."""
    if location is None:
        return []
    return [{"start": {"line": n}, "end": {"line": n}}
            for n in range(location.start_line, max(location.end_line, location.start_line) + 1)]


def warning_json(w: LintWarning) -> dict[str, Any]:
    out: dict[str, Any] = {"ruleName": w.rule.name, "description": w.rule.description}
    if w.rule.url:
        out["url"] = w.rule.url
    out["detail"] = w.detail
    out["location"] = {"ranges": line_ranges(w.location)}
    return out


def source_json(filename: str, data: bytes) -> dict[str, Any]:
    return {"filename": filename, "data": base64.b64encode(data).decode(),
            "language": "Dockerfile"}


@dataclass
class LintResult:
    """Warnings of one Dockerfile and, when the check could not finish (a broken
    Dockerfile, or ``error=true`` with findings), the error."""

    filename: str
    source: bytes
    warnings: list[LintWarning] = field(default_factory=list)
    error: str | None = None
    error_location: SourceLocation | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "warnings": [warning_json(w) for w in self.warnings] or None,
            "sources": [source_json(self.filename, self.source)],
        }
        if self.error is not None:
            loc: dict[str, Any] = {}
            if self.error_location is not None:
                loc["ranges"] = line_ranges(self.error_location)
            out["buildError"] = {"message": self.error, "location": loc}
        return out


def source_lines(doc: dict[str, Any]) -> list[str]:
    source = (doc.get("sources") or [{}])[0]
    return base64.b64decode(source.get("data", "")).decode("utf-8", "surrogateescape") \
        .split("\n")


def snippet(filename: str, lines: list[str], ranges: list[dict[str, Any]]) -> str:
    start, end = ranges[0]["start"]["line"], ranges[-1]["end"]["line"]
    return SourceLocation(filename, start, end, tuple(lines[start - 1:end]),
                          lines).render_snippet()


def render_warnings(doc: dict[str, Any], filename: str | None = None) -> str:
    """Each warning as BuildKit prints it (``result.txt``): ``WARNING: Rule - URL``, the
    message and the lines, sorted by line; ``filename`` names the Dockerfile as the user
    gave it (buildx's mapping), else the result's own name."""
    warnings = doc.get("warnings") or []
    source = (doc.get("sources") or [{}])[0]
    filename = filename or source.get("filename", "Dockerfile")
    lines = source_lines(doc)
    out: list[str] = []
    for w in sorted(warnings, key=lambda w: (bool(w["location"]["ranges"]), _first_line(w))):
        out.append(f"\nWARNING: {w['ruleName']}" + (f" - {w['url']}" if w.get("url") else ""))
        out.append(w.get("detail", ""))
        ranges = w["location"]["ranges"]
        if ranges:
            out.append(snippet(filename, lines, ranges))
    return "\n".join(out) + "\n" if out else ""


def render_text(doc: dict[str, Any], filename: str | None = None) -> str:
    """buildx's screen for ``--call check`` from the JSON document (what a daemon sends)."""
    n = len(doc.get("warnings") or [])
    body = ""
    if n:
        body = f"Check complete, {'1 warning has' if n == 1 else f'{n} warnings have'} " \
               "been found!\n" + render_warnings(doc, filename)
    if doc.get("buildError") is None:
        if not n:
            body += "Check complete, no warnings found.\n"
    elif n:
        body += "\n"
    return body


def render_error(doc: dict[str, Any], filename: str | None = None) -> str:
    """The check's error (after ``ERROR: ``) with its lines, as buildx prints it."""
    err = doc["buildError"]
    text = str(err.get("message", ""))
    ranges = (err.get("location") or {}).get("ranges") or []
    if ranges:
        source = (doc.get("sources") or [{}])[0]
        text += "\n" + snippet(filename or source.get("filename", "Dockerfile"),
                               source_lines(doc), ranges)
    return text


def _first_line(w: dict[str, Any]) -> int:
    ranges = w["location"]["ranges"]
    return int(ranges[0]["start"]["line"]) if ranges else 0
