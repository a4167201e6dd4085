"""``bkpy build`` as a command: --call, stdin Dockerfiles, usage and Dockerfile errors."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import Bkpy

REPO = Path(__file__).resolve().parents[2]
BASIC = REPO / "testdata" / "dockerfiles" / "parse" / "basic"


def test_call_targets_and_outline(bkpy: Bkpy) -> None:
    targets = bkpy("build", "--call", "targets", str(BASIC)).out
    assert "release (default)" in targets
    assert "compiles the server binary" in targets
    data = json.loads(bkpy("build", "--call", "targets", "--format", "json", str(BASIC)).out)
    assert [t["name"] for t in data["Targets"]][:2] == ["build", "test"]
    outline = bkpy("build", "--call", "outline", "--target", "build", str(BASIC)).out
    assert "GO_VERSION" in outline and "1.22" in outline


def test_dockerfile_from_stdin_with_empty_context(bkpy: Bkpy, tmp_path: Path) -> None:
    out = tmp_path / "out"
    bkpy("build", "-o", f"type=local,dest={out}", "-",
         stdin="FROM busybox\nRUN echo from-stdin > /f\n")
    assert (out / "f").read_text() == "from-stdin\n"


def test_dockerfile_errors_exit_1_with_location(bkpy: Bkpy, tmp_path: Path) -> None:
    # as buildx: the snippet, then BuildKit's message on the last ERROR line
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUNN echo hi\n")
    r = bkpy("build", str(ctx), check=False)
    assert r.code == 1
    assert "Dockerfile:2\n" in r.err
    assert "   2 | >>> RUNN echo hi" in r.err
    assert r.err.rstrip().splitlines()[-1] == (
        "ERROR: failed to build: "
        "failed to solve: dockerfile parse error on line 2: unknown instruction: RUNN "
        "(did you mean RUN?)")
    assert "Traceback" not in r.err
    r = bkpy("build", "--target", "nope", str(BASIC), check=False)
    assert r.code == 1 and 'target stage "nope" could not be found' in r.err


def test_usage_errors_exit_2(bkpy: Bkpy, tmp_path: Path) -> None:
    r = bkpy("build", str(tmp_path / "missing"), check=False)
    assert r.code == 2 and "not a directory" in r.err
    r = bkpy("build", "-o", "type=bogus", str(BASIC), check=False)
    assert r.code == 2 and "unknown type" in r.err
    assert "Traceback" not in r.err


def test_secret_looking_arg_and_env_names_warn_as_buildkit(bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    # the unused stage is not linted (BuildKit lints the stages it builds); PUBLIC_KEY and
    # MY_SECRET_FILE carry an allow word; apikeys is no whole word
    (ctx / "Dockerfile").write_text(
        "FROM busybox AS other\nENV UNUSED_TOKEN=1\n"
        "FROM busybox\nARG DB_PASSWORD\nARG PUBLIC_KEY=1 AUTH\n"
        "ENV api_key=1 GITHUB_TOKEN=2 apikeys=3 MY_SECRET_FILE=x\n")
    r = bkpy("build", "--progress", "plain", str(ctx))
    rule = "SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data"
    tail = r.err[r.err.index("4 warnings found (use docker --debug to expand):"):]
    assert tail.splitlines()[1:] == [
        f' - {rule} (ARG "DB_PASSWORD") (line 4)',
        f' - {rule} (ARG "AUTH") (line 5)',
        f' - {rule} (ENV "api_key") (line 6)',
        f' - {rule} (ENV "GITHUB_TOKEN") (line 6)',
    ]
    assert "warning" not in bkpy("build", "--progress", "quiet", str(ctx)).err
