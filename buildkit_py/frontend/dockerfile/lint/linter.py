"""Which rules run and what becomes of a finding: BuildKit's linter configuration.

The configuration comes from ``# check=skip=A,B;error=true;experimental=C`` at the top of
the Dockerfile, or, replacing it entirely, from the ``BUILDKIT_DOCKERFILE_CHECK`` build
arg (same syntax). A ``# check=...`` comment right above an instruction or stage adds to
it for that instruction only. Experimental rules run only when named by
``experimental=``; ``skip=`` never turns them off (as in BuildKit). With ``error=true``
the build fails after conversion when any rule fired.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from buildkit_py.errors import SourceLocation
from buildkit_py.frontend.dockerfile.lint.rules import Rule, rule
from buildkit_py.frontend.dockerfile.parser.directives import (
    CheckConfig,
    CheckOptionError,
    parse_check_directive,
)

CHECK_BUILD_ARG = "BUILDKIT_DOCKERFILE_CHECK"


# The configuration is the ``check`` directive's (one syntax, parsed in one place).
LintConfig = CheckConfig


def parse_check_options(text: str) -> LintConfig:
    """Parse ``skip=A,B;error=true;experimental=all`` (BuildKit's ParseLintOptions)."""
    return parse_check_directive(text)


# A comment line (the '#' already removed) that is a ``check=`` directive.
_COMMENT_DIRECTIVE = re.compile(r"\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*\Z")


@dataclass(frozen=True)
class LintWarning:
    """One finding: the rule, its message and the instruction's lines."""

    rule: Rule
    detail: str
    location: SourceLocation | None

    @property
    def line(self) -> int:
        return self.location.start_line if self.location is not None else 0

    def short(self) -> str:
        """BuildKit's one-line form: ``Rule: message (line N)``."""
        text = f"{self.rule.name}: {self.detail}"
        return f"{text} (line {self.line})" if self.line > 0 else text


@dataclass
class _Findings:
    warnings: list[LintWarning] = field(default_factory=list)
    called: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Linter:
    """Runs rules under one configuration; copies made for a stage or instruction share
    the findings. ``report=False`` counts findings (for ``error=true``) without keeping
    them, as BuildKit does for every platform but the first."""

    config: LintConfig = field(default_factory=LintConfig)
    findings: _Findings = field(default_factory=_Findings)
    report: bool = True

    def run(self, name: str, location: SourceLocation | None, *args: str) -> None:
        r = rule(name)
        if r.experimental:
            if not (self.config.experimental_all or r.name in self.config.experimental):
                return
        elif self.config.skip_all or r.name in self.config.skip:
            return
        if not self.report:
            return
        self.findings.called.append(r.name)
        self.findings.warnings.append(LintWarning(r, r.message(*args), location))

    def with_comments(self, comments: list[str]) -> Linter:
        """This linter plus the first ``check=`` comment among ``comments`` (a malformed one
        is ignored, as BuildKit does)."""
        for comment in comments:
            m = _COMMENT_DIRECTIVE.match(comment)
            if m is None or m.group(1).lower() != "check":
                continue
            try:
                extra = parse_check_options(m.group(2).split(" ", 1)[0])
            except CheckOptionError:
                return self
            return replace(self, config=self.config.merged(extra))
        return self

    @property
    def warnings(self) -> list[LintWarning]:
        return self.findings.warnings

    def error(self) -> str | None:
        """BuildKit's failure message with ``error=true`` when a rule fired, else None."""
        if not self.config.error or not self.findings.called:
            return None
        rules = ", ".join(dict.fromkeys(self.findings.called))
        return f"lint violation found for rules: {rules}"


def linter_for(directive: str | None, build_args: dict[str, str], *,
               report: bool = True) -> Linter:
    """The build's linter: the ``BUILDKIT_DOCKERFILE_CHECK`` build arg if given, else the
    ``# check=`` directive (only its first word counts, as in BuildKit)."""
    if CHECK_BUILD_ARG in build_args:
        try:
            config = parse_check_options(build_args[CHECK_BUILD_ARG])
        except CheckOptionError as err:
            raise CheckOptionError(f"failed to parse build-arg:{CHECK_BUILD_ARG}: {err}") \
                from None
    else:
        try:
            config = parse_check_options((directive or "").split(" ", 1)[0])
        except CheckOptionError as err:
            raise CheckOptionError(f"failed to parse check options: {err}") from None
    return Linter(config, report=report)
