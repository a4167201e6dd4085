"""User-facing errors.

Every error a user can cause derives from :class:`UserError`; the CLI prints its
``render()`` to stderr and exits with ``exit_code``, never with a traceback.

A build failure is rendered like buildx renders BuildKit's: details first (the failing
step's last log lines, the Dockerfile snippet with ``>>>`` on the failing lines), then one
``ERROR:`` line carrying BuildKit's exact message (what scripts and the differential corpus
compare), then bkpy's own advice on ``hint:`` lines. The CLI wraps what the build itself
raises in :class:`BuildFailedError` (buildx's ``failed to build: ``), whose framed step logs
are printed with the progress instead (buildx's display prints them when it closes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

EXIT_BUILD_FAILED = 1
EXIT_USAGE = 2

_RULE = "-" * 20


class UserError(Exception):
    """An error caused by input; rendered without a traceback."""

    exit_code = EXIT_BUILD_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def details(self) -> list[str]:
        """Lines printed before the ERROR line."""
        return []

    def log_block(self) -> list[str]:
        """The failed step's name and last log lines, framed as buildx frames them; the
        first lines of :meth:`details` when there are any."""
        return []

    def text(self) -> str:
        """The error message proper (the ERROR line without its ``ERROR: ``)."""
        return self.message

    def render(self) -> str:
        parts = [*self.details(), f"ERROR: {self.text()}"]
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)


class UsageError(UserError):
    """Bad command-line usage or configuration."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class SourceLocation:
    """A 1-based inclusive line range in a file, with the lines' text.

    ``source`` holds every line of the file (for the snippet's context lines); it is left out
    of comparisons.
    """

    filename: str
    start_line: int
    end_line: int
    lines: tuple[str, ...] = field(default=())
    source: Sequence[str] = field(default=(), compare=False, repr=False)

    def render_snippet(self) -> str:
        """The location as buildx prints it: up to four lines of context around the range
        (two when the range spans several lines), the range's lines marked ``>>>``."""
        start = self.start_line
        if not self.source:  # only the range's own lines are known
            return "\n".join([f"{self.filename}:{start}", _RULE,
                              *(f" {start + i:>3} | >>> {line}" for i, line in
                                enumerate(self.lines)), _RULE])
        text = self.source
        end = min(self.end_line, len(text))
        if start < 1 or start > len(text):
            return f"{self.filename}:{start}"
        first, last = start, end
        pad = 4 if end == start else 2
        # BuildKit's padding loop: each round widens both ends once (when it can) and also
        # counts as a step itself.
        p = 0
        while p < pad:
            if first > 1:
                first -= 1
                p += 1
            if last != len(text):
                last += 1
                p += 1
            p += 1
        out = [f"{self.filename}:{start}", _RULE]
        for i in range(first, last + 1):
            mark = ">>>" if start <= i <= end else "   "
            out.append(f" {i:>3} | {mark} {text[i - 1]}")
        out.append(_RULE)
        return "\n".join(out)


class DockerfileError(UserError):
    """A malformed Dockerfile: names the file, line(s) and offending text.

    ``parse_line`` is set for errors BuildKit finds while typing an instruction, which it
    words ``dockerfile parse error on line N: ...``.
    """

    exit_code = EXIT_BUILD_FAILED

    def __init__(
        self,
        message: str,
        location: SourceLocation | None = None,
        *,
        hint: str | None = None,
        parse_line: int | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.location = location
        self.parse_line = parse_line

    def details(self) -> list[str]:
        return [self.location.render_snippet()] if self.location is not None else []

    def text(self) -> str:
        if self.parse_line is not None:
            return f"dockerfile parse error on line {self.parse_line}: {self.message}"
        return self.message


class BuildError(UserError):
    """A build step failed (a RUN exited non-zero, a source is missing, ...).

    ``step`` names the progress step that failed (e.g. ``[internal] load metadata for
    REF``): buildx frames a failed step's name even when it logged nothing.
    """

    exit_code = EXIT_BUILD_FAILED

    def __init__(
        self,
        message: str,
        location: SourceLocation | None = None,
        *,
        log_tail: list[str] | None = None,
        hint: str | None = None,
        step: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.location = location
        self.log_tail = log_tail or []
        self.step = step

    def log_block(self) -> list[str]:
        """The step's name and its last log lines as they are, framed as buildx frames them."""
        if self.step is not None:
            return ["------", f" > {self.step}:", *self.log_tail, "------"]
        if not self.log_tail:
            return []
        return ["------", *(f" > {line}" for line in self.log_tail), "------"]

    def details(self) -> list[str]:
        snippet = [self.location.render_snippet()] if self.location is not None else []
        return [*self.log_block(), *snippet]


class SolveError(UserError):
    """An error met while solving a build, which BuildKit reports as ``failed to solve: ...``
    (the Dockerfile frontend runs inside the solve, so its errors are worded so too)."""

    exit_code = EXIT_BUILD_FAILED

    def __init__(self, cause: UserError) -> None:
        super().__init__(cause.message, hint=cause.hint)
        self.cause = cause

    def details(self) -> list[str]:
        return self.cause.details()

    def log_block(self) -> list[str]:
        return self.cause.log_block()

    def text(self) -> str:
        return f"failed to solve: {self.cause.text()}"


class BuildFailedError(UserError):
    """Whatever stopped a build once it was asked for, as buildx reports it: ``failed to
    build: `` before the builder's message (flag errors found before that have no prefix).
    The failed step's framed logs are left out: the CLI prints them when the progress
    display closes, and not at all in quiet and rawjson modes, as buildx does."""

    def __init__(self, cause: UserError) -> None:
        super().__init__(cause.message, hint=cause.hint)
        self.cause = cause
        self.exit_code = cause.exit_code

    def details(self) -> list[str]:
        lines = self.cause.details()
        block = self.cause.log_block()
        return lines[len(block):] if block and lines[:len(block)] == block else lines

    def text(self) -> str:
        return f"failed to build: {self.cause.text()}"
