"""The progress screens as buildx shows them, through ``bkpy build``: ``--progress none``
and ``BUILDKIT_PROGRESS``; ``rawjson`` as BuildKit's SolveStatus records (compared with
what the referee printed for the same build, ``testdata/screens/``); plain progress
listing cached steps inputs first; the live tty screen (timers that keep running, pulled
bytes, the final ``FINISHED`` frame) through a real pty."""

from __future__ import annotations

import base64
import json
import os
import re
import sys
from pathlib import Path

import pexpect
import pytest

from tests.e2e.conftest import Bkpy, make_runner
from tests.e2e.screens_cases import (
    MULTI_STAGE,
    transfer_blocks,
    transfer_builds,
    write_transfer_context,
)
from tests.images import push_layout
from tests.registry.fixtures import RegistryServer

SCREENS = Path(__file__).resolve().parents[2] / "testdata" / "screens"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
LINTED = "FROM busybox AS Base\nRUN echo hi\n"


def _ctx(tmp_path: Path, dockerfile: str, name: str = "ctx") -> Path:
    ctx = tmp_path / name
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "a.txt").write_text("a\n")
    (ctx / "b.txt").write_text("b\n")
    return ctx


def _records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _referee(name: str) -> list[dict]:
    return _records((SCREENS / name).read_text())


def _push_busybox(registry: RegistryServer, layout: Path) -> str:
    return push_layout(layout, f"{registry.host}/screens/busybox")


# ------------------------------------------------------------------ --progress none

def test_progress_none_prints_nothing_and_quiet_prints_the_image_id(
        bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, LINTED)
    out = ["-o", f"type=oci,dest={tmp_path / 'img.tar'}"]
    none = bkpy("build", "--progress", "none", *out, str(ctx))
    assert none.err == "" and none.out == ""  # not even buildx's warnings summary
    quiet = bkpy("build", "--progress", "quiet", *out, str(ctx))
    dash_q = bkpy("build", "-q", *out, str(ctx))
    # buildx: --progress quiet is -q, the image id on stdout
    assert quiet.err == "" and quiet.out == dash_q.out and dash_q.out.startswith("sha256:")


def test_buildkit_progress_sets_the_default_mode(bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "FROM busybox\nRUN echo hi\n")
    raw = bkpy("build", str(ctx), env={"BUILDKIT_PROGRESS": "rawjson"})
    assert _records(raw.err) and all(line.startswith("{") for line in raw.err.splitlines())
    # as buildx, it replaces auto (given or not); any other --progress wins
    auto = bkpy("build", "--progress", "auto", str(ctx), env={"BUILDKIT_PROGRESS": "rawjson"})
    assert _records(auto.err)
    plain = bkpy("build", "--progress", "plain", str(ctx), env={"BUILDKIT_PROGRESS": "rawjson"})
    assert "#1 [internal] load build definition from Dockerfile" in plain.err
    none = bkpy("build", str(ctx), env={"BUILDKIT_PROGRESS": "none"})
    assert none.err == ""
    bad = bkpy("build", str(ctx), env={"BUILDKIT_PROGRESS": "fancy"}, check=False)
    assert bad.code == 2 and "Traceback" not in bad.err and "fancy" in bad.err


def test_tty_needs_a_terminal(bkpy: Bkpy, tmp_path: Path) -> None:
    r = bkpy("build", "--progress", "tty", str(_ctx(tmp_path, "FROM busybox\n")), check=False)
    assert r.code == 2 and "Traceback" not in r.err
    assert "ERROR: failed to get console: provided file is not a console" in r.err


# ------------------------------------------------------------------ rawjson

def _union_keys(records: list[dict], kind: str) -> dict[str, type]:
    keys: dict[str, type] = {}
    for rec in records:
        for item in rec.get(kind) or []:
            for k, v in item.items():
                keys.setdefault(k, type(v))
    return keys


def test_rawjson_is_buildkits_solve_status(tmp_path: Path, busybox_layout: Path,
                                           registry: RegistryServer) -> None:
    base = _push_busybox(registry, busybox_layout)
    bkpy = make_runner(tmp_path / "state")  # empty: the base image is pulled
    ctx = _ctx(tmp_path, MULTI_STAGE.replace("{BASE}", base))
    out = ["-o", f"type=local,dest={tmp_path / 'out'}"]
    ours = _records(bkpy("build", "--progress", "rawjson", *out, str(ctx)).err)
    ours += _records(bkpy("build", "--progress", "rawjson", *out, str(ctx)).err)
    theirs = _referee("rawjson-build.jsonl") + _referee("rawjson-cached.jsonl")
    # every record is a SolveStatus: only BuildKit's four lists (and bkpy's own cache misses)
    assert {k for r in ours for k in r} <= {"vertexes", "statuses", "logs", "warnings",
                                            "bkpy.cacheMisses"}
    for kind in ("vertexes", "statuses", "logs"):
        mine, ref = _union_keys(ours, kind), _union_keys(theirs, kind)
        assert mine == ref, kind  # the same field names, each of the same JSON type
    vertexes = [v for r in ours for v in r.get("vertexes", [])]
    seen = {v["digest"] for v in vertexes}
    for v in vertexes:
        assert DIGEST.match(v["digest"]) and all(i in seen for i in v.get("inputs", []))
        assert all(TIME.match(v[k]) for k in ("started", "completed") if k in v)
    statuses = [s for r in ours for s in r.get("statuses", [])]
    layer = [s for s in statuses if s.get("total") and s.get("completed")]
    assert layer and all(s["current"] == s["total"] and TIME.match(s["timestamp"])
                         for s in layer)
    assert any(s["id"].startswith("extracting sha256:") for s in statuses)
    # logs are the raw chunks, base64, each on its stream
    run = next(v["digest"] for v in vertexes if v["name"].startswith("[one 2/2] RUN"))
    chunks = [(e["stream"], base64.b64decode(e["data"])) for r in ours
              for e in r.get("logs", []) if e["vertex"] == run]
    assert b"".join(d for s, d in chunks if s == 1) == b"line1\n"
    assert b"".join(d for s, d in chunks if s == 2) == b"err\n"


def test_rawjson_lint_warnings_and_history_replay(bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, LINTED)
    raw = _records(bkpy("build", "--progress", "rawjson", str(ctx)).err)
    warnings = [w for r in raw for w in r.get("warnings", [])]
    digests = {v["digest"] for r in raw for v in r.get("vertexes", [])}
    assert warnings and all(w["vertex"] in digests for w in warnings)
    # the recorded build replays in the same form
    replay = _records(bkpy("history", "logs", "--progress", "rawjson").out)
    assert {v["name"] for r in replay for v in r.get("vertexes", [])} == \
        {v["name"] for r in raw for v in r.get("vertexes", [])}
    assert all(DIGEST.match(v["digest"]) for r in replay for v in r.get("vertexes", []))


# ------------------------------------------------------------------ plain

def test_plain_lists_cached_steps_inputs_first(fresh_bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, MULTI_STAGE.replace("{BASE}", "busybox"))
    out = ["-o", f"type=local,dest={tmp_path / 'out'}"]
    fresh_bkpy("build", "--progress", "plain", *out, str(ctx))
    again = fresh_bkpy("build", "--progress", "plain", *out, str(ctx)).err
    headers = re.findall(r"^#(\d+) (\[.*)$", again, re.M)
    numbers = [int(n) for n, _ in headers]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    cached = [name for n, name in headers if f"#{n} CACHED" in again.splitlines()]
    # BuildKit sends the cached steps of a hit in one list, inputs before consumers
    theirs = [v["name"] for r in _referee("rawjson-cached.jsonl")
              for v in r.get("vertexes", []) if v.get("cached")]
    assert [c for c in cached if c in theirs] == theirs
    # the context's transfers in BuildKit's bytes; the Dockerfile's figure differs: the
    # referee's names its registry, an address of another length
    recorded = transfer_blocks((SCREENS / "plain-cached.txt").read_text())
    ours = transfer_blocks(again)
    for step in ("[internal] load .dockerignore", "[internal] load build context"):
        assert ours[step] == recorded[step], step


def test_plain_transfer_steps_are_the_referees(tmp_path: Path) -> None:
    """``transferring context: 70.39kB``: the bytes BuildKit counts for what it would send
    (bkpy reads the files in place), fewer when a rebuild finds files unchanged, as the
    referee printed them (testdata/screens/transfers.json; the files are owned by root as
    when it was recorded: owners are part of the count)."""
    bkpy = make_runner(tmp_path / "state")
    ctx = tmp_path / "ctx"
    write_transfer_context(ctx)

    def build(*args: str) -> str:
        out = ["-o", f"type=local,dest={tmp_path / 'out'}"]
        return bkpy("build", "--progress", "plain", *out, *args, str(ctx), cwd=ctx).err

    expected = json.loads((SCREENS / "transfers.json").read_text())
    assert transfer_builds(ctx, build) == expected


def test_plain_shows_pulled_bytes(tmp_path: Path, busybox_layout: Path,
                                  registry: RegistryServer) -> None:
    base = _push_busybox(registry, busybox_layout)
    bkpy = make_runner(tmp_path / "state")
    ctx = _ctx(tmp_path, f"FROM {base}\nRUN true\n")
    err = bkpy("build", "--progress", "plain", str(ctx)).err
    # "#4 sha256:... 1.03MB / 1.03MB 0.1s done", then "#4 extracting sha256:... done"
    assert re.search(r"^#\d+ sha256:[0-9a-f]{64} \d+(\.\d\d[kMG])?B / \d+(\.\d\d[kMG])?B"
                     r"( \d+\.\ds)? done$", err, re.M), err
    assert re.search(r"^#\d+ extracting sha256:[0-9a-f]{64}( \d+\.\ds)? done$", err, re.M)


# ------------------------------------------------------------------ tty

def _tty_build(root: Path, *args: str, extra: dict[str, str] | None = None) -> str:
    env = {k: v for k, v in os.environ.items()
           if k not in ("BKPY_DEBUG", "NO_COLOR", "BUILDKIT_PROGRESS")}
    env.update(BKPY_ROOT=str(root), BKPY_CONFIG=str(root / "client"), **(extra or {}))
    child = pexpect.spawn(sys.executable, ["-m", "buildkit_py", "build", *args], env=env,
                          timeout=300, dimensions=(40, 120))
    try:
        text = child.read().decode("utf-8", "replace")
    finally:
        child.close()
    assert child.exitstatus == 0, text
    return text


def test_tty_timers_run_between_events_and_bytes_show(
        tmp_path: Path, busybox_layout: Path, registry: RegistryServer) -> None:
    base = _push_busybox(registry, busybox_layout)
    root = tmp_path / "state"
    ctx = _ctx(tmp_path, f"FROM {base}\nRUN echo started; sleep 1.5; echo ended\n")
    screen = _tty_build(root, "--progress", "tty", str(ctx))
    # the step printed once at the start and once at the end: the timer moves in between
    timers = re.findall(r"RUN echo started; sleep 1\.5; echo ended +(\d+\.\d)s", screen)
    assert len(set(timers)) >= 5, timers
    assert " => => # started" in screen  # a running step's output under it
    assert re.search(r" => => sha256:[0-9a-f]+ \d+(\.\d\d[kMG])?B / \d+(\.\d\d[kMG])?B +"
                     r"\d+\.\ds", screen)
    final = screen[screen.rindex("[+] Building"):]
    head = re.match(r"\[\+\] Building \d+\.\ds \((\d+)/(\d+)\) FINISHED", final)
    assert head and head[1] == head[2], final[:200]
    # the final frame lists every step, finished (blue), with its time at the right edge
    assert "\x1b[34m => [2/2] RUN echo started" in final and " => => # " not in final
    line = next(x for x in final.splitlines() if "RUN echo started" in x)
    assert len(re.sub(r"\x1b\[[0-9;]*m", "", line).rstrip("\r")) == 119


@pytest.mark.parametrize("mode", ["tty", "plain"])
def test_auto_is_tty_on_a_terminal(tmp_path: Path, busybox_layout: Path, mode: str) -> None:
    root = tmp_path / "state"
    make_runner(root)("image", "import", str(busybox_layout), "busybox:latest")
    ctx = _ctx(tmp_path, "FROM busybox\nRUN true\n")
    screen = _tty_build(root, str(ctx),
                        extra={} if mode == "tty" else {"BUILDKIT_PROGRESS": "plain"})
    assert ("FINISHED" in screen) == (mode == "tty")
    assert ("#1 [internal]" in screen) == (mode == "plain")


def test_push_shows_its_bytes(bkpy: Bkpy, tmp_path: Path, registry: RegistryServer) -> None:
    ctx = _ctx(tmp_path, "FROM busybox\nRUN head -c 3000000 /dev/urandom > /blob\n")
    ref = f"{registry.host}/screens/pushed:1"
    err = bkpy("build", "--progress", "plain", "-t", ref, "--push", str(ctx)).err
    # BuildKit's "pushing layers" status, with the bytes sent (and found there) so far
    done = re.search(r"^#(\d+) pushing layers (\S+) / (\S+)( \d+\.\ds)? done$", err, re.M)
    assert done and done[2] == done[3] and done[2].endswith("MB"), err
    assert f"#{done[1]} pushing {ref}" in err
