"""Vertex names as BuildKit prints them: ``[stage-1 2/5] RUN ...``.

``N`` counts the steps that make a vertex (FROM of an image, RUN, COPY, ADD, WORKDIR,
ONBUILD triggers); a single-stage build drops the stage name (``[2/5]``) and a
multi-platform build adds the platform (``[linux/arm64 build 2/4]``, plus
``->arm64`` when the stage runs on another architecture than ``TARGETPLATFORM``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from buildkit_py.errors import UsageError
from buildkit_py.platforms import Platform, normalize, parse_platform


@dataclass
class StepNamer:
    """Numbers the steps of one stage."""

    stage_name: str = ""
    total: int = 0
    index: int = 0
    prefix_platform: bool = False

    def name(
        self,
        text: str,
        platform: Platform | None,
        env: Mapping[str, str] | None = None,
        *,
        onbuild: bool = False,
        advance: bool = True,
    ) -> str:
        """``[<platform> <stage> i/N] text``; ``advance=False`` repeats the last index."""
        if self.total == 0:
            return text
        out = "["
        if self.prefix_platform and platform is not None:
            out += platform.format() + _cross_suffix(platform, env or {}) + " "
        if self.stage_name:
            out += self.stage_name + " "
        if advance:
            self.index += 1
        width = len(str(self.total))
        out += f"{self.index:>{width}}/{self.total}] "
        if onbuild:
            out += "ONBUILD "
        return out + text


def _cross_suffix(base: Platform, env: Mapping[str, str]) -> str:
    """``->arm64`` when the stage's TARGET* args name another architecture."""
    target = _platform_from_env(env)
    if target is None:
        return ""
    target = normalize(Platform(target.os or base.os, target.architecture or base.architecture,
                                target.variant))
    if target.os == base.os and target.architecture != base.architecture:
        return "->" + target.architecture + (f"/{target.variant}" if target.variant else "")
    if target.os != base.os:
        return "->" + target.format()
    return ""


def _platform_from_env(env: Mapping[str, str]) -> Platform | None:
    value = env.get("TARGETPLATFORM")
    if value:
        try:
            return parse_platform(value)
        except UsageError:  # a user-set value that is not a platform: no suffix
            return None
    keys = ("TARGETOS", "TARGETARCH", "TARGETVARIANT")
    if not any(k in env for k in keys):
        return None
    return Platform(
        env.get("TARGETOS", ""), env.get("TARGETARCH", ""), env.get("TARGETVARIANT", ""))


def uppercase_command(text: str) -> str:
    """Upper-case the instruction keyword of ``text``."""
    head, sep, rest = text.partition(" ")
    return head.upper() + sep + rest


def summarize_heredoc(body: str) -> str:
    """First line of a heredoc body, ``...`` if there are more."""
    lines = body.strip().replace("\r\n", "\n").split("\n")
    return lines[0] + ("..." if len(lines) > 1 else "")
