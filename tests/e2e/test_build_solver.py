"""Issue 3 behaviour through ``bkpy build``: caching, laziness, parallelism, dedup, --target."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from tests.e2e.conftest import Bkpy


def _events(stderr: str) -> list[dict]:
    out = []
    for line in stderr.splitlines():
        line = line.strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def _vertices(stderr: str) -> dict[str, dict]:
    """name -> merged vertex record from --progress=rawjson output."""
    merged: dict[str, dict] = {}
    for ev in _events(stderr):
        for v in ev.get("vertexes", []):
            rec = merged.setdefault(v["digest"], {})
            rec.update(v)
    return {v["name"]: v for v in merged.values()}


def _ran(stderr: str) -> set[str]:
    return {name for name, v in _vertices(stderr).items()
            if "completed" in v and not v.get("cached") and not v.get("error")}


def _cached(stderr: str) -> set[str]:
    return {name for name, v in _vertices(stderr).items() if v.get("cached")}


def _write(ctx: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        p = ctx / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


MULTI = """\
FROM busybox AS base
RUN echo base > /base.txt

FROM base AS one
COPY a.txt /a.txt
RUN cat /a.txt > /one.txt

FROM base AS two
COPY b.txt /b.txt
RUN cat /b.txt > /two.txt

FROM scratch
COPY --from=one /one.txt /one.txt
COPY --from=two /two.txt /two.txt
COPY last.txt /last.txt
"""


def test_build_outputs_files_and_rebuild_is_fully_cached(fresh_bkpy: Bkpy, tmp_path: Path
                                                         ) -> None:
    ctx = tmp_path / "ctx"
    _write(ctx, {"Dockerfile": MULTI, "a.txt": "A", "b.txt": "B", "last.txt": "L",
                 "unrelated.txt": "U"})
    out = tmp_path / "out"
    first = fresh_bkpy("build", "--progress=rawjson", "-o", f"type=local,dest={out}", str(ctx))
    assert (out / "one.txt").read_text() == "A"
    assert (out / "two.txt").read_text() == "B"
    assert (out / "last.txt").read_text() == "L"
    assert sorted(os.listdir(out)) == ["last.txt", "one.txt", "two.txt"]
    assert any("RUN cat /a.txt" in n for n in _ran(first.err))

    again = fresh_bkpy("build", "--progress=rawjson", "-o", f"type=local,dest={out}", str(ctx))
    ran = {n for n in _ran(again.err) if not n.startswith(("[internal]", "copying", "export"))}
    assert ran == set(), f"a no-op rebuild ran {ran}"
    assert any("RUN cat /a.txt" in n for n in _cached(again.err))


def test_changing_a_file_reruns_only_its_copy_and_what_follows(fresh_bkpy: Bkpy, tmp_path: Path
                                                               ) -> None:
    ctx = tmp_path / "ctx"
    _write(ctx, {"Dockerfile": MULTI, "a.txt": "A", "b.txt": "B", "last.txt": "L",
                 "unrelated.txt": "U"})
    fresh_bkpy("build", "--progress=rawjson", str(ctx))

    (ctx / "unrelated.txt").write_text("changed")
    r = fresh_bkpy("build", "--progress=rawjson", str(ctx))
    steps = {n for n in _ran(r.err) if "RUN" in n or "COPY" in n}
    assert steps == set(), f"editing an unused file re-ran {steps}"

    (ctx / "last.txt").write_text("L2")
    r = fresh_bkpy("build", "--progress=rawjson", str(ctx))
    steps = {n for n in _ran(r.err) if "RUN" in n or "COPY" in n}
    assert steps == {n for n in steps if "COPY last.txt" in n} and steps, steps

    (ctx / "a.txt").write_text("A2")
    r = fresh_bkpy("build", "--progress=rawjson", str(ctx))
    steps = {n for n in _ran(r.err) if "RUN" in n or "COPY" in n}
    assert any("COPY a.txt" in n for n in steps)
    assert any("RUN cat /a.txt" in n for n in steps)
    assert not any("b.txt" in n for n in steps)
    assert not any("echo base" in n for n in steps)


def test_independent_stages_run_in_parallel(fresh_bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    _write(ctx, {"Dockerfile": """\
FROM busybox AS a
RUN sleep 1 && echo a > /a

FROM busybox AS b
RUN sleep 1 && echo b > /b

FROM scratch
COPY --from=a /a /a
COPY --from=b /b /b
"""})
    r = fresh_bkpy("build", "--progress=rawjson", str(ctx))
    v = _vertices(r.err)
    a = next(x for n, x in v.items() if "echo a" in n)
    b = next(x for n, x in v.items() if "echo b" in n)
    def t(stamp: str) -> datetime:  # RFC 3339 with nanoseconds, as BuildKit's rawjson
        return datetime.fromisoformat(stamp[:26].rstrip("Z"))

    assert t(a["started"]) < t(b["completed"]) and t(b["started"]) < t(a["completed"]), (a, b)


def test_same_run_in_two_stages_runs_once(fresh_bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    _write(ctx, {"Dockerfile": """\
FROM busybox AS a
RUN echo shared > /shared

FROM busybox AS b
RUN echo shared > /shared

FROM scratch
COPY --from=a /shared /a
COPY --from=b /shared /b
"""})
    r = fresh_bkpy("build", "--progress=rawjson", "-o", f"type=local,dest={tmp_path/'o'}",
                   str(ctx))
    runs = [n for n in _ran(r.err) if "echo shared" in n]
    assert len(runs) == 1, runs
    assert (tmp_path / "o" / "a").read_text() == "shared\n"
    assert (tmp_path / "o" / "b").read_text() == "shared\n"


def test_target_skips_a_failing_unused_stage(bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    _write(ctx, {"Dockerfile": """\
FROM busybox AS broken
RUN exit 3

FROM busybox AS good
RUN echo ok > /ok
"""})
    bkpy("build", "--target", "good", "-o", f"type=local,dest={tmp_path/'o'}", str(ctx))
    assert (tmp_path / "o" / "ok").read_text() == "ok\n"
    bad = bkpy("build", "--target", "broken", str(ctx), check=False)
    assert bad.code == 1
    assert "exit code: 3" in bad.err
    assert "Dockerfile:2" in bad.err
    assert "Traceback" not in bad.err


def test_no_cache_reruns_every_step(fresh_bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    _write(ctx, {"Dockerfile": "FROM busybox\nRUN echo one > /one\nRUN echo two > /two\n"})
    fresh_bkpy("build", str(ctx))
    r = fresh_bkpy("build", "--no-cache", "--progress=rawjson", str(ctx))
    runs = {n for n in _ran(r.err) if "RUN" in n}
    assert len(runs) == 2, runs
    r = fresh_bkpy("build", "--progress=rawjson", str(ctx))
    assert not {n for n in _ran(r.err) if "RUN" in n}
