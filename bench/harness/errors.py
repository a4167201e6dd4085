"""The harness's one error type: setup that cannot go on (missing tool, failing daemon)."""

from __future__ import annotations

from buildkit_py.errors import UserError


class BenchError(UserError):
    """Rendered by ``bench/run.py`` without a traceback."""
