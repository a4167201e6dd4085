"""ONBUILD triggers of a base image or stage, compiled right after the child's FROM."""

from __future__ import annotations

import dataclasses
from typing import Any

from buildkit_py.errors import DockerfileError, SourceLocation
from buildkit_py.frontend.dockerfile.instructions import load_dockerfile


def parse_trigger(trigger: str, location: SourceLocation | None, filename: str) -> Any:
    """Parse one trigger (``COPY . /app``) into an instruction located at the child's FROM."""
    try:
        parsed = load_dockerfile(f"FROM scratch\n{trigger}\n", filename)
    except DockerfileError as exc:
        # BuildKit reports the trigger's own error (not as a parse error of a line)
        raise DockerfileError(exc.message, location,
                              hint=exc.hint or f"in the ONBUILD trigger {trigger!r}") from exc
    instructions = list(parsed.stages[0].commands) if parsed.stages else []
    if len(instructions) != 1:
        raise DockerfileError("onbuild trigger should be a single expression", location)
    instr = instructions[0]
    if location is not None and dataclasses.is_dataclass(instr):
        try:
            instr = dataclasses.replace(instr, location=location)
        except (TypeError, ValueError):
            pass
    return instr
