"""How failed builds are printed: buildx's layout with BuildKit's wording on the ERROR line."""

from __future__ import annotations

import pytest

from buildkit_py.client.connection import RemoteBuildError
from buildkit_py.errors import (
    EXIT_BUILD_FAILED,
    EXIT_USAGE,
    BuildError,
    BuildFailedError,
    DockerfileError,
    SolveError,
    SourceLocation,
    UsageError,
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


def test_a_failed_build_is_worded_as_buildx_and_leaves_the_step_block_to_the_progress() -> None:
    cause = SolveError(VertexError(
        'process "/bin/sh -c b && exit 3" did not complete successfully: exit code: 3',
        digest="sha256:x", vertex_name="[3/4] RUN b && exit 3", location=_loc(3, 4),
        log_tail=["out"]))
    err = BuildFailedError(cause)
    assert err.log_block() == [] and cause.log_block() == [
        "------", " > [3/4] RUN b && exit 3:", "out", "------"]
    text = err.render()
    assert text.startswith("Dockerfile:3\n")
    assert text.endswith('\nERROR: failed to build: failed to solve: process "/bin/sh -c b && '
                         'exit 3" did not complete successfully: exit code: 3')
    # the exit code and the hint are the cause's
    flag = BuildFailedError(UsageError("parse annotations: x", hint="h"))
    assert flag.exit_code == EXIT_USAGE
    assert flag.render() == "ERROR: failed to build: parse annotations: x\nhint: h"


def test_a_step_that_logged_nothing_is_still_framed() -> None:
    err = BuildError("r: not found", _loc(1, 1), step="[internal] load metadata for r")
    assert err.log_block() == ["------", " > [internal] load metadata for r:", "------"]
    assert err.render().startswith("------\n > [internal] load metadata for r:\n------\n"
                                   "Dockerfile:1\n")


def test_a_daemon_s_rendered_error_is_taken_apart() -> None:
    cause = SolveError(VertexError(
        "exit code: 3", digest="sha256:x", vertex_name="[3/4] RUN b", location=_loc(3, 4),
        log_tail=["------", "ERROR: printed by the step"]))
    cause.hint = "look"
    remote = RemoteBuildError(cause.render(), 1)
    assert remote.render() == cause.render()
    assert remote.log_block() == cause.log_block()
    assert (remote.text(), remote.hint) == ("failed to solve: exit code: 3", "look")
    assert BuildFailedError(remote).render() == BuildFailedError(cause).render()
    plain = RemoteBuildError("ERROR: boom", 2)
    assert plain.log_block() == [] and BuildFailedError(plain).render() == \
        "ERROR: failed to build: boom"


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
