"""``--call check``: run the linter over a whole conversion without building anything
(BuildKit's DockerfileLint).

Without ``--target`` every stage is converted (and its base image resolved), so rules
fire in stages the default target does not need. A Dockerfile that cannot be converted
is not an error of the check: the result carries the error (with its lines) next to the
warnings found up to that point, and ``error=true`` with findings is such an error too.
"""

from __future__ import annotations

from dataclasses import replace

from buildkit_py.errors import DockerfileError, UserError
from buildkit_py.frontend.dockerfile.convert.converter import convert, make_linter
from buildkit_py.frontend.dockerfile.convert.options import ConvertOptions
from buildkit_py.frontend.dockerfile.lint import (
    CHECK_BUILD_ARG,
    CheckOptionError,
    Linter,
    LintResult,
    linter_for,
)
from buildkit_py.frontend.dockerfile.lint.static import (
    check_instruction,
    report_empty_continuations,
)


def lint_dockerfile(data: bytes, opts: ConvertOptions) -> LintResult:
    """The lint result of ``data`` converted with ``opts`` (``all_stages`` is set when
    no target is given)."""
    # reason: load_dockerfile pulls in the parser; kept next to its only use here
    from buildkit_py.frontend.dockerfile.instructions import load_dockerfile

    if CHECK_BUILD_ARG in opts.build_args:
        # a malformed build arg fails the request itself, before any Dockerfile is read
        try:
            linter_for(None, opts.build_args)
        except CheckOptionError as err:
            raise DockerfileError(str(err)) from None
    result = LintResult(opts.dockerfile_name, bytes(data))
    lint: Linter | None = None
    try:
        try:
            df = load_dockerfile(data, opts.dockerfile_name)
        except DockerfileError:
            lint = _lint_until_broken(data, opts)
            raise
        lint = make_linter(df, opts)
        convert(df, replace(opts, all_stages=not opts.target, lint_report=True), lint)
    except UserError as err:
        result.error = err.text()
        if isinstance(err, DockerfileError):
            result.error_location = err.location
    if lint is not None:
        result.warnings = list(lint.warnings)
    return result


def _lint_until_broken(data: bytes, opts: ConvertOptions) -> Linter | None:
    """The findings BuildKit makes before an instruction it cannot type: empty
    continuation lines, then the checks of every instruction up to the broken one."""
    # reason: the parser and loader are needed only for a broken Dockerfile here
    from buildkit_py.frontend.dockerfile.instructions.load import build_instruction
    from buildkit_py.frontend.dockerfile.parser import parse_dockerfile

    try:
        parsed = parse_dockerfile(data, opts.dockerfile_name)
    except UserError:
        return None
    directive = parsed.directive("check")
    try:
        lint = linter_for(directive.value if directive else None, opts.build_args)
    except CheckOptionError:
        return None
    report_empty_continuations(parsed.warnings, lint)
    for node in parsed.nodes:
        try:
            instr = build_instruction(node, parsed)
        except UserError:
            break
        check_instruction(instr, lint)
    return lint
