"""Which Dockerfile frontend a build asks for, and whether the built-in one serves it.

A Dockerfile can name the frontend that should build it: ``# syntax=REF`` on its first
lines, or ``--build-arg BUILDKIT_SYNTAX=REF`` (which wins, as in BuildKit). BuildKit
then runs that image as a gateway frontend. bkpy runs no external frontends: its
built-in frontend follows the newest ``docker/dockerfile:1``, so it serves every
reference to that channel and refuses any other value with an error that names it,
never building a file with other rules than the ones it asked for.

Served (each also as ``docker.io/docker/dockerfile:...`` and with ``@sha256:DIGEST``):

| tag | meaning |
|---|---|
| ``1``, ``1.N``, ``1.N.M`` | the stable channel (older releases' rules are a subset) |
| ``1-labs``, ``1.N-labs``, ``1.N.M-labs`` | the labs channel: RUN --device from 1.14 on |
| ``latest``, no tag, ``labs`` | the same channels under their moving names |

Refused: other major versions (``:2``), other repositories (``docker/dockerfile-upstream``,
``tonistiigi/...``), other images.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from buildkit_py.errors import DockerfileError, SourceLocation
from buildkit_py.gostrings import go_quote

if TYPE_CHECKING:
    from buildkit_py.frontend.dockerfile.instructions.model import Dockerfile

SYNTAX_ARG = "BUILDKIT_SYNTAX"
BUILTIN = "docker/dockerfile:1"

_SERVED = re.compile(
    r"(?:docker\.io/)?docker/dockerfile"
    r"(?::(?:latest|labs|1(?:\.(?P<minor>\d+)(?:\.\d+)?)?(?P<labs>-labs)?))?"
    r"(?:@sha256:[0-9a-f]{64})?")
_DEVICES_SINCE = 14  # RUN --device: docker/dockerfile:1.14-labs and later


@dataclass(frozen=True)
class Frontend:
    """The built-in frontend's channel a build runs on."""

    ref: str  # as requested ("" when nothing was named)
    labs: bool = False  # the labs channel: RUN --device is available


def served(ref: str) -> Frontend | None:
    """The channel ``ref`` names if the built-in frontend serves it, else None."""
    m = _SERVED.fullmatch(ref)
    if m is None:
        return None
    if ":labs" in ref:
        return Frontend(ref, labs=True)
    minor = m.group("minor")
    return Frontend(ref, labs=m.group("labs") is not None
                    and (minor is None or int(minor) >= _DEVICES_SINCE))


def requested_frontend(directive: str | None, build_args: Mapping[str, str],
                       location: SourceLocation | None = None) -> Frontend:
    """The frontend a build asks for: ``BUILDKIT_SYNTAX`` (first word) if set, else the
    ``# syntax=`` directive's value (``location`` is that line, for the error)."""
    cmdline = build_args.get(SYNTAX_ARG, "").strip()
    if cmdline:
        ref = cmdline.split(" ", 1)[0]
        found = served(ref)
        if found is None:
            raise DockerfileError(
                f"failed with build-arg:{SYNTAX_ARG} = {cmdline}: {_refusal(ref)}",
                hint=f"drop --build-arg {SYNTAX_ARG} or set it to {BUILTIN}")
        return found
    if not directive:
        return Frontend("")
    found = served(directive)
    if found is None:
        raise DockerfileError(_refusal(directive), location,
                              hint=f"remove the # syntax= line or use # syntax={BUILTIN}")
    return found


def frontend_of(dockerfile: Dockerfile, build_args: Mapping[str, str]) -> Frontend:
    """The channel a loaded Dockerfile (and the build's args) ask for; raises when it is
    a frontend bkpy does not run, pointing at the ``# syntax=`` line."""
    directive = dockerfile.parse.directive("syntax")
    where = dockerfile.parse.location(directive.line) if directive is not None else None
    return requested_frontend(dockerfile.syntax, build_args, where)


def _refusal(ref: str) -> str:
    return (f"unsupported frontend {go_quote(ref)}: bkpy runs no external frontends, only its "
            f"built-in Dockerfile frontend ({BUILTIN}, 1.N and their -labs channels)")
