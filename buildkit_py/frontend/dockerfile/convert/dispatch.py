"""Route one instruction to its handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from buildkit_py.frontend.dockerfile.convert import dispatch_meta as meta
from buildkit_py.frontend.dockerfile.convert.dispatch_context import ConvertContext
from buildkit_py.frontend.dockerfile.convert.dispatch_copy import dispatch_copy
from buildkit_py.frontend.dockerfile.convert.dispatch_run import dispatch_run
from buildkit_py.frontend.dockerfile.convert.lint_checks import (
    undefined_arg_defaults,
    undefined_vars,
)
from buildkit_py.frontend.dockerfile.convert.stage_state import Command, StageState
from buildkit_py.frontend.dockerfile.instructions import model as m

_META: dict[type[m.Instruction], Callable[[StageState, Any, ConvertContext], None]] = {
    m.Env: meta.dispatch_env,
    m.Label: meta.dispatch_label,
    m.Maintainer: meta.dispatch_maintainer,
    m.Expose: meta.dispatch_expose,
    m.User: meta.dispatch_user,
    m.Volume: meta.dispatch_volume,
    m.StopSignal: meta.dispatch_stopsignal,
    m.Shell: meta.dispatch_shell,
    m.Cmd: meta.dispatch_cmd,
    m.Entrypoint: meta.dispatch_entrypoint,
    m.Healthcheck: meta.dispatch_healthcheck,
    m.Arg: meta.dispatch_arg,
    m.Onbuild: meta.dispatch_onbuild,
    m.Workdir: meta.dispatch_workdir,
}

# Instructions that make a vertex and so count as a numbered step in vertex names.
STEP_TYPES = (m.Run, m.Copy, m.Add, m.Workdir)


def dispatch(d: StageState, cmd: Command, cx: ConvertContext) -> None:
    stage_lint = cx.lint
    cx.lint = stage_lint.with_comments(cmd.instr.comments)  # its `# check=` comment
    try:
        _lint(d, cmd.instr, cx)
        _dispatch(d, cmd, cx)
    finally:
        cx.lint = stage_lint


def _lint(d: StageState, instr: m.Instruction, cx: ConvertContext) -> None:
    """UndefinedVar, checked on the words BuildKit expands before dispatching."""
    assert d.scope is not None
    env = d.scope.expand_env()
    if isinstance(instr, m.Arg):
        undefined_arg_defaults(instr, env, d.scope.arg_names(), cx.opts.build_args, cx.lex,
                               cx.lint)
    else:
        undefined_vars(instr, env, d.scope.arg_names(), cx.lex, cx.lint)


def _dispatch(d: StageState, cmd: Command, cx: ConvertContext) -> None:
    instr = cmd.instr
    if isinstance(instr, m.Run):
        dispatch_run(d, cmd.sources, instr, cx)
    elif isinstance(instr, (m.Copy, m.Add)):
        dispatch_copy(d, cmd.sources[0] if cmd.sources else None, instr, cx)
    else:
        handler = _META.get(type(instr))
        if handler is not None:
            handler(d, instr, cx)
