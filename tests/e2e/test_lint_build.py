"""Lint around the check itself: ``--check``, file names as the user gave them, the
warnings of a normal build (progress, summary, rawjson, --metadata-file), ``error=true``
and ``BUILDKIT_DOCKERFILE_CHECK`` failing or quieting a build, one report for several
platforms, and ``--call check`` through bkpyd."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.control.conftest import Daemon, client_env, run_bkpy
from tests.e2e.conftest import Bkpy

LINTED = "FROM scratch AS Builder\nenv FOO bar\nCMD echo hi\n"
SHORT = [
    "StageNameCasing: Stage name 'Builder' should be lowercase (line 1)",
    "ConsistentInstructionCasing: Command 'env' should match the case of the command "
    "majority (uppercase) (line 2)",
    'LegacyKeyValueFormat: "env key=value" should be used instead of legacy "env key value" '
    "format (line 2)",
    "JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior "
    "related to OS signals (line 3)",
]


def _ctx(tmp_path: Path, dockerfile: str = LINTED, name: str = "Dockerfile") -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / name).write_text(dockerfile)
    return ctx


def test_check_shorthand_and_file_names_as_given(bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    full = bkpy("build", "--call", "check", str(ctx), check=False)
    short = bkpy("build", "--check", str(ctx), check=False)
    assert full.code == short.code == 1 and full.out == short.out
    # buildx names the file CONTEXT/Dockerfile, or -f as given
    assert f"\n{ctx}/Dockerfile:1\n" in full.out
    (ctx / "other.Dockerfile").write_text("FROM scratch\nMAINTAINER me\n")
    r = bkpy("build", "--check", "-f", "other.Dockerfile", ".", cwd=ctx, check=False)
    assert "\nother.Dockerfile:2\n" in r.out and r.code == 1
    clean = bkpy("build", "--check", "-", stdin="FROM scratch\n")
    assert clean.out == "Check complete, no warnings found.\n"
    # --metadata-file gets the subrequest's result, as buildx writes it
    md = tmp_path / "check.json"
    bkpy("build", "--check", "--metadata-file", str(md), str(ctx), check=False)
    meta = json.loads(md.read_text())
    assert meta["result.statuscode"] == "1" and meta["version"] == "1.0.0"
    assert len(meta["result.json"]["warnings"]) == 4
    assert meta["result.txt"].startswith("\nWARNING: StageNameCasing - https://")
    assert "\nDockerfile:1\n" in meta["result.txt"]  # the result's own name


def test_a_build_shows_its_warnings_as_buildx(bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    out = tmp_path / "out"
    md = tmp_path / "md.json"
    r = bkpy("build", "--progress", "plain", "-o", f"type=local,dest={out}",
             "--metadata-file", str(md), str(ctx), env={"BUILDX_METADATA_WARNINGS": "1"})
    assert [line.split("WARN: ", 1)[1] for line in r.err.splitlines()
            if line.startswith("#1 WARN: ")] == SHORT
    tail = r.err[r.err.index("4 warnings found (use docker --debug to expand):"):]
    assert tail.splitlines()[1:] == [f" - {s}" for s in SHORT]
    records = json.loads(md.read_text())["buildx.build.warnings"]
    assert [base64.b64decode(w["short"]).decode() for w in records] == SHORT
    first = records[0]
    assert first["level"] == 1 and first["url"].endswith("/stage-name-casing/")
    assert base64.b64decode(first["detail"][0]) == b"Stage names should be lowercase"
    assert first["sourceInfo"]["filename"] == "Dockerfile"
    assert base64.b64decode(first["sourceInfo"]["data"]).decode() == LINTED
    assert first["range"] == [{"start": {"line": 1}, "end": {"line": 1}}]
    # buildx writes them only when BUILDX_METADATA_WARNINGS is true
    bkpy("build", "--progress", "quiet", "-o", f"type=local,dest={out}",
         "--metadata-file", str(md), str(ctx))
    assert "buildx.build.warnings" not in json.loads(md.read_text())

    raw = bkpy("build", "--progress", "rawjson", "-o", f"type=local,dest={out}", str(ctx))
    warnings = [w for line in raw.err.splitlines() if line.startswith("{")
                for w in json.loads(line).get("warnings", [])]
    assert [base64.b64decode(w["short"]).decode() for w in warnings] == SHORT
    assert "warnings found" not in raw.err


def test_error_true_fails_the_build_and_the_build_arg_overrides(bkpy: Bkpy,
                                                                tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "# check=error=true\n" + LINTED)
    out = tmp_path / "out"
    r = bkpy("build", "--progress", "plain", "-o", f"type=local,dest={out}", str(ctx),
             check=False)
    assert r.code == 1 and "Traceback" not in r.err
    # as buildx: the findings (progress, then the summary), then the error
    assert r.err.count("#1 WARN: ") == 4
    summary = r.err.index("4 warnings found")
    error = r.err.index("ERROR: failed to build: failed to solve: lint violation found for rules: "
                        "StageNameCasing, ConsistentInstructionCasing, LegacyKeyValueFormat, "
                        "JSONArgsRecommended")
    assert summary < error
    # BUILDKIT_DOCKERFILE_CHECK replaces the directive: no error=true, nothing skipped
    r = bkpy("build", "--progress", "plain", "-o", f"type=local,dest={out}",
             "--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=StageNameCasing", str(ctx))
    assert "StageNameCasing" not in r.err and "3 warnings found" in r.err
    r = bkpy("build", "--progress", "plain", "-o", f"type=local,dest={out}",
             "--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=all", str(ctx))
    assert "WARN" not in r.err and "warnings found" not in r.err
    r = bkpy("build", "-o", f"type=local,dest={out}",
             "--build-arg", "BUILDKIT_DOCKERFILE_CHECK=error=maybe", str(ctx), check=False)
    assert r.code == 1 and ("failed to parse build-arg:BUILDKIT_DOCKERFILE_CHECK: failed to "
                            'parse check option "error=maybe"') in r.err


def test_several_platforms_report_once(bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "FROM scratch\nMAINTAINER me\n")
    r = bkpy("build", "--progress", "plain", "--platform", "linux/amd64,linux/arm64",
             "-o", f"type=local,dest={tmp_path / 'out'}", str(ctx))
    assert r.err.count("WARN: MaintainerDeprecated") == 1
    assert "\n 1 warning found" in r.err


def test_unused_build_args_are_listed_go_style(bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "FROM scratch\n")
    r = bkpy("build", "--build-arg", "ONE=1", "--build-arg", "TWO=2",
             "-o", f"type=local,dest={tmp_path / 'out'}", str(ctx))
    assert "one or more build-args [ONE TWO] were not consumed" in r.err


def test_check_through_the_daemon_is_the_same(tmp_path: Path, bkpy: Bkpy) -> None:
    ctx = _ctx(tmp_path, "# check=error=true\n" + LINTED)
    embedded = bkpy("build", "--call", "check", ".", cwd=ctx, check=False)
    sock = tmp_path / "d.sock"
    daemon = Daemon(tmp_path / "d-root", f"unix://{sock}", ["--addr", f"unix://{sock}"],
                    tmp_path / "d.log").start()
    try:
        env = client_env(tmp_path, daemon)
        remote = run_bkpy("build", "--call", "check", ".", cwd=ctx, env=env, check=False)
        assert remote.code == embedded.code == 1
        assert remote.out == embedded.out and "Check complete, 4 warnings" in remote.out
        assert "ERROR: lint violation found for rules: StageNameCasing" in remote.err
        js = run_bkpy("build", "--call", "check,format=json", ".", cwd=ctx, env=env,
                      check=False)
        assert len(json.loads(js.out)["warnings"]) == 4
        built = run_bkpy("build", "--progress", "plain", "--build-arg",
                         "BUILDKIT_DOCKERFILE_CHECK=", "-o",
                         f"type=local,dest={tmp_path / 'out'}", ".", cwd=ctx, env=env)
        assert built.err.count(" WARN: ") == 4 and "4 warnings found" in built.err
    finally:
        daemon.stop()
