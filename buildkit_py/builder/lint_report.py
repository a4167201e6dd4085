"""Lint findings of a build, delivered the ways buildx shows them: one line each in the
build's warnings summary, a ``WARN:`` entry in the progress of the "load build definition"
step (BuildKit's VertexWarning), ``buildx.build.warnings`` in the metadata when asked for;
and the whole ``--call check`` result.
"""

from __future__ import annotations

import base64
import json
import time
from typing import TYPE_CHECKING, Any

from buildkit_py.api.outcome import WARNING_STREAM, BuildOutcome
from buildkit_py.frontend.dockerfile.lint.results import line_ranges
from buildkit_py.solver.progress import ProgressBus, VertexLog

if TYPE_CHECKING:
    from buildkit_py.frontend.dockerfile.convert import ConvertOptions
    from buildkit_py.frontend.dockerfile.lint import LintWarning

METADATA_KEY = "buildx.build.warnings"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def vertex_warning(w: LintWarning, vertex: str, filename: str, source: bytes) -> dict[str, Any]:
    """BuildKit's VertexWarning of a finding, as buildx writes it (bytes in base64)."""
    out: dict[str, Any] = {"vertex": vertex, "level": 1, "short": _b64(w.short()),
                           "detail": [_b64(w.rule.description)]}
    if w.rule.url:
        out["url"] = w.rule.url
    out["sourceInfo"] = {"filename": filename, "data": base64.b64encode(source).decode(),
                         "language": "Dockerfile"}
    if w.location is not None:
        out["range"] = line_ranges(w.location)
    return out


def report_lint(warnings: list[LintWarning], bus: ProgressBus, vertex: str, filename: str,
                source: bytes, outcome: BuildOutcome, *, metadata: bool) -> None:
    for w in warnings:
        short = w.short()
        if short in outcome.warnings:
            continue
        outcome.warnings.append(short)
        record = vertex_warning(w, vertex, filename, source)
        if vertex:
            bus.publish(VertexLog(vertex, WARNING_STREAM, json.dumps(record).encode(),
                                  time.time()))
        if metadata:
            outcome.metadata.setdefault(METADATA_KEY, []).append(record)


def check_outcome(dockerfile: bytes, opts: ConvertOptions) -> BuildOutcome:
    """``--call check``: the lint result in the metadata, as BuildKit's subrequest
    returns it and buildx writes it to --metadata-file (``result.json`` as an object,
    ``result.txt``, ``result.statuscode``, ``version``)."""
    # reason: the converter is loaded by build() already; kept local like its imports
    from buildkit_py.frontend.dockerfile.convert.check import lint_dockerfile
    from buildkit_py.frontend.dockerfile.lint import render_warnings

    result = lint_dockerfile(dockerfile, opts)
    doc = result.to_json()
    status = 1 if result.warnings or result.error is not None else 0
    return BuildOutcome(metadata={"result.json": doc, "result.statuscode": str(status),
                                  "result.txt": render_warnings(doc), "version": "1.0.0"})
