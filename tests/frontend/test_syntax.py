"""``# syntax=`` and ``BUILDKIT_SYNTAX``: the built-in frontend serves the
``docker/dockerfile:1`` channels; any other frontend is refused by name, never ignored."""

from __future__ import annotations

import pytest

from buildkit_py.errors import DockerfileError
from buildkit_py.frontend.dockerfile import load_dockerfile
from buildkit_py.frontend.dockerfile.syntax import frontend_of, served
from tests.convert.helpers import build

DIGEST = "@sha256:" + "0" * 64


@pytest.mark.parametrize(("ref", "labs"), [
    ("docker/dockerfile:1", False),
    ("docker/dockerfile:1.7", False),
    ("docker/dockerfile:1.7.1", False),
    ("docker.io/docker/dockerfile:1", False),
    ("docker/dockerfile:1" + DIGEST, False),
    ("docker.io/docker/dockerfile:1.4" + DIGEST, False),
    ("docker/dockerfile", False),
    ("docker/dockerfile:latest", False),
    ("docker/dockerfile:1-labs", True),
    ("docker/dockerfile:1.14-labs", True),
    ("docker/dockerfile:1.17.1-labs", True),
    ("docker/dockerfile:labs", True),
    ("docker/dockerfile:1.7-labs", False),  # a labs release before RUN --device
])
def test_served(ref: str, labs: bool) -> None:
    found = served(ref)
    assert found is not None
    assert found.labs is labs


@pytest.mark.parametrize("ref", [
    "docker/dockerfile:2", "docker/dockerfile:0.9", "docker/dockerfile:10",
    "docker/dockerfile-upstream:master", "docker/dockerfile:master-labs",
    "tonistiigi/dockerfile:1", "example.com/docker/dockerfile:1", "alpine",
    "docker/dockerfile:1@sha256:abc", "docker/dockerfile:1.x",
])
def test_refused(ref: str) -> None:
    assert served(ref) is None


def test_refusal_names_the_value_and_points_at_the_line() -> None:
    with pytest.raises(DockerfileError) as err:
        build("# syntax=docker/dockerfile:2\nFROM scratch\n")
    assert err.value.text() == (
        'unsupported frontend "docker/dockerfile:2": bkpy runs no external frontends, only '
        "its built-in Dockerfile frontend (docker/dockerfile:1, 1.N and their -labs channels)")
    assert err.value.location is not None and err.value.location.start_line == 1
    assert err.value.hint is not None and "remove the # syntax= line" in err.value.hint
    assert ">>> # syntax=docker/dockerfile:2" in err.value.render()


def test_build_arg_wins_over_the_directive_as_in_buildkit() -> None:
    # the directive names a foreign frontend, the build arg the built-in one: served
    build("# syntax=example.com/frontend:1\nFROM scratch\n",
          build_args={"BUILDKIT_SYNTAX": "docker/dockerfile:1"})
    with pytest.raises(DockerfileError) as err:
        build("# syntax=docker/dockerfile:1\nFROM scratch\n",
              build_args={"BUILDKIT_SYNTAX": "example.com/frontend:1 --opt"})
    assert err.value.text().startswith(
        "failed with build-arg:BUILDKIT_SYNTAX = example.com/frontend:1 --opt: "
        'unsupported frontend "example.com/frontend:1"')


def test_labs_channel_enables_run_device() -> None:
    df = load_dockerfile(b"# syntax=docker/dockerfile:1-labs\nFROM scratch\n")
    assert frontend_of(df, {}).labs
    plain = load_dockerfile(b"FROM scratch\n")
    assert not frontend_of(plain, {}).labs
    assert frontend_of(plain, {"BUILDKIT_SYNTAX": "docker/dockerfile:1.14-labs"}).labs
