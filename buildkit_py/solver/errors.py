"""Errors the solver raises."""

from __future__ import annotations

from buildkit_py.errors import BuildError, SourceLocation, UserError


class VertexError(BuildError):
    """A vertex failed: its message as BuildKit words it (without the step), the step's name,
    where it came from and its last log lines."""

    def __init__(
        self,
        message: str,
        *,
        digest: str,
        vertex_name: str,
        location: SourceLocation | None = None,
        log_tail: list[str] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, location, log_tail=log_tail, hint=hint, step=vertex_name)
        self.digest = digest
        self.vertex_name = vertex_name


def describe_exception(exc: BaseException) -> str:
    """The user-facing text of an exception raised by a worker."""
    if isinstance(exc, UserError):
        return exc.text()
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
