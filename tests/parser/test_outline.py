"""`--call targets` / `--call outline` data and their buildx-style text and JSON forms."""

from __future__ import annotations

import base64
import json

import pytest

from buildkit_py.errors import UsageError
from buildkit_py.frontend.dockerfile import load_dockerfile
from buildkit_py.frontend.dockerfile.outline import (
    format_outline,
    format_targets,
    outline,
    tabwrite,
)
from tests.parser.conftest import CORPUS, run_bkpy

DOCKERFILE = """\
# syntax=docker/dockerfile:1
# GO_VERSION version of Go
ARG GO_VERSION=1.22
ARG UNUSED=x
# ALPINE_TAG tag of the runtime image
ARG ALPINE_TAG=3.20

# deps fetches modules
FROM golang:${GO_VERSION} AS deps
# GOPROXY module proxy to use
ARG GOPROXY=https://proxy.golang.org
RUN --mount=type=secret,id=netrc,required --mount=type=ssh go mod download

# build compiles the binary
FROM deps AS build
ARG GO_VERSION
ARG LDFLAGS
RUN --mount=type=secret,target=/run/secrets/token go build

FROM alpine AS docs
RUN --mount=type=secret,id=docs-only true

FROM alpine:$ALPINE_TAG
COPY --from=build /out /bin/
"""


@pytest.fixture()
def df():  # type: ignore[no-untyped-def]
    return load_dockerfile(DOCKERFILE)


def test_tabwrite_pads_all_but_the_last_column() -> None:
    assert tabwrite([["a", "bb", "c"], ["ccc", "d", ""]], padding=2) == "a    bb  c\nccc  d   \n"


def test_targets_text(df) -> None:  # type: ignore[no-untyped-def]
    assert format_targets(df, "text") == (
        "TARGET    DESCRIPTION\n"
        "deps      fetches modules\n"
        "build     compiles the binary\n"
        "docs      \n"
        "(default) \n"
    )


def test_targets_json(df) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(format_targets(df, "json"))
    first, *_, last = data["Targets"]
    assert first == {
        "name": "deps",
        "description": "fetches modules",
        "base": "golang:${GO_VERSION}",
        "location": {"ranges": [{"start": {"line": 9}, "end": {"line": 9}}]},
    }
    assert last["default"] is True and "name" not in last and last["base"] == "alpine:$ALPINE_TAG"
    assert base64.b64decode(data["Sources"][0]).decode() == DOCKERFILE


def test_outline_follows_base_and_copy_from(df) -> None:  # type: ignore[no-untyped-def]
    out = outline(df)
    assert out.name == "" and out.description == ""
    assert [(a.name, a.value, a.description) for a in out.args] == [
        ("GO_VERSION", "1.22", "version of Go"),
        ("ALPINE_TAG", "3.20", "tag of the runtime image"),
        ("GOPROXY", "https://proxy.golang.org", "module proxy to use"),
        ("LDFLAGS", "", ""),
    ]
    assert [(s.name, s.required) for s in out.secrets] == [("netrc", True), ("token", False)]
    assert [(s.name, s.required) for s in out.ssh] == [("default", False)]


def test_outline_text_for_named_target(df) -> None:  # type: ignore[no-untyped-def]
    assert format_outline(df, "build", "text") == (
        "TARGET:      build\n"
        "DESCRIPTION: compiles the binary\n"
        "\n"
        "BUILD ARG    VALUE                      DESCRIPTION\n"
        "GO_VERSION   1.22                       version of Go\n"
        "GOPROXY      https://proxy.golang.org   module proxy to use\n"
        "LDFLAGS                                 \n"
        "\n"
        "SECRET   REQUIRED\n"
        "netrc    true\n"
        "token    \n"
        "\n"
        "SSH       REQUIRED\n"
        "default   \n"
        "\n"
    )


def test_outline_json(df) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(format_outline(df, "docs", "json"))
    assert data["name"] == "docs"
    assert data["secrets"] == [
        {
            "name": "docs-only",
            "location": {"ranges": [{"start": {"line": 21}, "end": {"line": 21}}]},
        }
    ]
    assert "args" not in data and "ssh" not in data


def test_outline_unknown_target_and_format(df) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match='target stage "nope" could not be found'):
        outline(df, "nope")
    with pytest.raises(UsageError, match="unknown format"):
        format_targets(df, "yaml")


def test_cli_targets_on_basic_corpus_file() -> None:
    proc = run_bkpy("dockerfile", "targets", str(CORPUS / "basic" / "Dockerfile"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().splitlines() == [
        "TARGET            DESCRIPTION",
        "build             compiles the server binary",
        "test              runs the unit tests",
        "release (default) is the image that ships",
    ]
