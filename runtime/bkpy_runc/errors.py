"""The single error type of the runtime: a failed step with a one-line reason."""

from __future__ import annotations


class RuntimeFailure(Exception):
    """A setup or CLI step failed; ``str()`` is the one-line message shown to the user."""

    def __init__(self, step: str, reason: str | BaseException | None = None) -> None:
        self.step = step
        if isinstance(reason, OSError) and reason.strerror:
            reason = reason.strerror
        self.reason = "" if reason is None else str(reason)
        super().__init__(f"{step}: {self.reason}" if self.reason else step)

