"""How failed builds are printed: buildx's layout with BuildKit's wording on the ERROR line."""

from __future__ import annotations

import pytest

from buildkit_py.errors import (
    EXIT_BUILD_FAILED,
    DockerfileError,
    SolveError,
    SourceLocation,
    UserError,
)
from buildkit_py.frontend.dockerfile.suggest import suggest
from buildkit_py.llb.source import digest_error
from buildkit_py.solver.errors import VertexError

SOURCE = ["FROM busybox", "RUN a", "RUN b && \\", "  exit 3", "RUN c", ""]


def _loc(start: int, end: int) -> SourceLocation:
    return SourceLocation("Dockerfile", start, end, tuple(SOURCE[start - 1:end]), SOURCE)


def test_snippet_pads_like_buildkit() -> None:
    # BuildKit's padding: a few lines of context (fewer around a range); ">>>" on the range
    assert _loc(2, 2).render_snippet().splitlines() == [
        "Dockerfile:2", "-" * 20,
        "   1 |     FROM busybox", "   2 | >>> RUN a", "   3 |     RUN b && \\",
        "   4 |       exit 3", "-" * 20]
    assert _loc(3, 4).render_snippet().splitlines()[2:-1] == [
        "   2 |     RUN a", "   3 | >>> RUN b && \\", "   4 | >>>   exit 3", "   5 |     RUN c"]


def test_dockerfile_error_in_a_build_prints_snippet_error_then_hint() -> None:
    cause = DockerfileError("unknown instruction: RUNN (did you mean RUN?)", _loc(2, 2),
                            hint="see the reference", parse_line=2)
    err = SolveError(cause)
    lines = err.render().splitlines()
    assert lines[0] == "Dockerfile:2"
    assert lines[-2:] == [
        "ERROR: failed to solve: dockerfile parse error on line 2: unknown instruction: RUNN "
        "(did you mean RUN?)",
        "hint: see the reference"]
    assert err.exit_code == cause.exit_code == EXIT_BUILD_FAILED


def test_failed_step_names_itself_above_its_log_tail() -> None:
    err = SolveError(VertexError(
        'process "/bin/sh -c b && exit 3" did not complete successfully: exit code: 3',
        digest="sha256:x", vertex_name="[3/4] RUN b && exit 3", location=_loc(3, 4),
        log_tail=["out"]))
    text = err.render()
    assert text.startswith("------\n > [3/4] RUN b && exit 3:\nout\n------\nDockerfile:3\n")
    assert text.endswith('\nERROR: failed to solve: process "/bin/sh -c b && exit 3" did not '
                         "complete successfully: exit code: 3")


def test_plain_user_error_is_one_line() -> None:
    assert UserError("boom", hint="try again").render() == "ERROR: boom\nhint: try again"


@pytest.mark.parametrize(("value", "options", "sensitive", "want"), [
    ("FOO", ["COPY", "FROM", "RUN"], False, "x (did you mean FROM?)"),
    ("copyy", ["COPY"], False, "x (did you mean copy?)"),
    ("XYZZYQ", ["COPY", "FROM"], False, "x"),
    ("RUN", ["RUN"], False, "x"),  # an exact match: the error is about something else
    ("chmow", ["chmod", "chown"], True, "x (did you mean chmod?)"),
])
def test_suggest_like_buildkit(value: str, options: list[str], sensitive: bool,
                               want: str) -> None:
    assert suggest("x", value, options, case_sensitive=sensitive) == want


@pytest.mark.parametrize(("value", "want"), [
    ("sha256:" + "0" * 64, None),
    ("sha256:nothex", "invalid checksum digest length"),
    ("sha256:" + "g" * 64, "invalid checksum digest format"),
    ("md5:abc", "unsupported digest algorithm"),
    ("nocolon", "invalid checksum digest format"),
])
def test_checksum_errors_use_go_digest_wording(value: str, want: str | None) -> None:
    assert digest_error(value) == want
