"""User-facing errors.

Every error a user can cause derives from :class:`UserError`; the CLI prints its
``render()`` to stderr and exits with ``exit_code``, never with a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_BUILD_FAILED = 1
EXIT_USAGE = 2


class UserError(Exception):
    """An error caused by input; rendered without a traceback."""

    exit_code = EXIT_BUILD_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        text = f"ERROR: {self.message}"
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text


class UsageError(UserError):
    """Bad command-line usage or configuration."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class SourceLocation:
    """A 1-based inclusive line range in a file, with the lines' text."""

    filename: str
    start_line: int
    end_line: int
    lines: tuple[str, ...] = field(default=())

    def render_snippet(self) -> str:
        out = [f"{self.filename}:{self.start_line}" + (
            f"-{self.end_line}" if self.end_line != self.start_line else "")]
        out.append("-" * 40)
        for i, text in enumerate(self.lines):
            out.append(f"{self.start_line + i:>4} | {text}")
        out.append("-" * 40)
        return "\n".join(out)


class DockerfileError(UserError):
    """A malformed Dockerfile: names the file, line(s) and offending text."""

    exit_code = EXIT_USAGE

    def __init__(
        self,
        message: str,
        location: SourceLocation | None = None,
        *,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.location = location

    def render(self) -> str:
        parts = []
        if self.location is not None:
            parts.append(self.location.render_snippet())
            where = f"{self.location.filename}:{self.location.start_line}: "
        else:
            where = ""
        parts.append(f"ERROR: {where}{self.message}")
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)


class BuildError(UserError):
    """A build step failed (a RUN exited non-zero, a source is missing, ...)."""

    exit_code = EXIT_BUILD_FAILED

    def __init__(
        self,
        message: str,
        location: SourceLocation | None = None,
        *,
        log_tail: list[str] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.location = location
        self.log_tail = log_tail or []

    def render(self) -> str:
        parts = []
        if self.log_tail:
            parts.append("------")
            parts.extend(f" > {line}" for line in self.log_tail)
            parts.append("------")
        if self.location is not None:
            parts.append(self.location.render_snippet())
        parts.append(f"ERROR: {self.message}")
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)
