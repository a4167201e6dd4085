"""BuildKit's Dockerfile linter: the 22 rules, their configuration and their results.

:mod:`.rules` is the table of rules, :mod:`.linter` decides which run (``# check=``,
``BUILDKIT_DOCKERFILE_CHECK``) and collects findings, :mod:`.static` holds the checks that
need only the loaded file, :mod:`.results` shapes what ``--call check`` prints. Checks
that need facts only conversion knows (variables, base images, .dockerignore) are made
by the converter through the same :class:`Linter`. A finding never changes the build,
except with ``error=true``.
"""

from buildkit_py.frontend.dockerfile.lint.linter import (
    CHECK_BUILD_ARG,
    CheckOptionError,
    LintConfig,
    Linter,
    LintWarning,
    linter_for,
    parse_check_options,
)
from buildkit_py.frontend.dockerfile.lint.results import (
    LintResult,
    render_error,
    render_text,
    render_warnings,
)
from buildkit_py.frontend.dockerfile.lint.rules import RULES, Rule
from buildkit_py.frontend.dockerfile.lint.secrets import looks_secret
from buildkit_py.frontend.dockerfile.lint.static import run_static_checks

__all__ = [
    "CHECK_BUILD_ARG",
    "RULES",
    "CheckOptionError",
    "LintConfig",
    "LintResult",
    "LintWarning",
    "Linter",
    "Rule",
    "linter_for",
    "looks_secret",
    "parse_check_options",
    "render_error",
    "render_text",
    "render_warnings",
    "run_static_checks",
]
