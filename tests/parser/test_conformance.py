"""BuildKit's own parser test files: `bkpy dockerfile ast` must print `result` exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildkit_py.errors import DockerfileError
from buildkit_py.frontend.dockerfile import dump_ast, parse_dockerfile
from tests.parser.conftest import CONFORMANCE, run_bkpy

POSITIVE = sorted(
    p.name for p in CONFORMANCE.glob("*") if p.is_dir() and p.name != "negative"
)
NEGATIVE = sorted(p.name for p in (CONFORMANCE / "negative").glob("*"))


def test_conformance_cases_are_present(conformance_dir: Path) -> None:
    assert len(POSITIVE) >= 10 and NEGATIVE


@pytest.mark.parametrize("case", POSITIVE)
def test_dump_matches_buildkit_result(case: str) -> None:
    folder = CONFORMANCE / case
    result = parse_dockerfile((folder / "Dockerfile").read_bytes())
    assert dump_ast(result) + "\n" == (folder / "result").read_text(encoding="utf-8")


@pytest.mark.parametrize("case", NEGATIVE)
def test_negative_case_is_rejected(case: str) -> None:
    with pytest.raises(DockerfileError):
        parse_dockerfile((CONFORMANCE / "negative" / case / "Dockerfile").read_bytes())


def test_cli_ast_prints_result_exactly() -> None:
    folder = CONFORMANCE / "json"
    proc = run_bkpy("dockerfile", "ast", str(folder / "Dockerfile"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (folder / "result").read_bytes()


def test_cli_ast_reads_stdin() -> None:
    folder = CONFORMANCE / "env"
    proc = run_bkpy("dockerfile", "ast", "-", stdin=(folder / "Dockerfile").read_bytes())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (folder / "result").read_bytes()


@pytest.mark.parametrize("case", NEGATIVE)
def test_cli_negative_case_exits_1_without_traceback(case: str) -> None:
    proc = run_bkpy("dockerfile", "ast", str(CONFORMANCE / "negative" / case / "Dockerfile"))
    assert proc.returncode == 1  # as buildx: a Dockerfile error is a failed build
    err = proc.stderr.decode()
    assert "ERROR:" in err and "Dockerfile:" in err
    assert "Traceback" not in err
    assert proc.stdout == b""
