"""The progress displays render solver events as BuildKit's layouts do."""

from __future__ import annotations

import base64
import io
import json

from buildkit_py.cli.build_run import feed
from buildkit_py.cli.progress_display import PlainDisplay, RawJSONDisplay, TTYDisplay
from buildkit_py.solver.progress import (
    VertexCached,
    VertexCompleted,
    VertexFailed,
    VertexLog,
    VertexStarted,
)


def _events() -> list:
    return [
        VertexStarted("d1", "[1/2] RUN echo hi", 100.0),
        VertexLog("d1", 1, b"hi\npart", 100.25),
        VertexLog("d1", 1, b"ial\n", 100.5),
        VertexCompleted("d1", "[1/2] RUN echo hi", 100.0, 101.25),
        VertexCached("d2", "[2/2] COPY a b", 101.5),
        VertexStarted("d3", "[3/3] RUN false", 102.0),
        VertexFailed("d3", "[3/3] RUN false", 102.0, 102.5, "exit code: 1"),
    ]


def test_plain_layout() -> None:
    out = io.StringIO()
    display = PlainDisplay(out)
    for ev in _events():
        feed(display, ev)
    text = out.getvalue()
    assert "#1 [1/2] RUN echo hi\n#1 0.250 hi\n#1 0.500 partial\n#1 DONE 1.2s\n" in text
    assert "#2 [2/2] COPY a b\n#2 CACHED\n" in text
    assert "#3 ERROR: exit code: 1\n" in text


def test_rawjson_is_one_object_per_line() -> None:
    out = io.StringIO()
    display = RawJSONDisplay(out)
    for ev in _events():
        feed(display, ev)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    cached = [v for r in records for v in r.get("vertexes", []) if v.get("cached")]
    assert cached and cached[0]["name"] == "[2/2] COPY a b"
    # BuildKit's VertexLog: the raw chunks, base64, with their stream
    logs = [(e["stream"], base64.b64decode(e["data"])) for r in records
            for e in r.get("logs", [])]
    assert logs == [(1, b"hi\npart"), (1, b"ial\n")]


def test_tty_collapses_finished_steps() -> None:
    out = io.StringIO()
    display = TTYDisplay(out)
    for ev in _events():
        feed(display, ev)
    display.close()
    text = out.getvalue()
    assert "=> CACHED [2/2] COPY a b" in text
    assert "=> ERROR [3/3] RUN false" in text
    assert "[1/2] RUN echo hi" in text
