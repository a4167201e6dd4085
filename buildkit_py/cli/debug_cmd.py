"""``bkpy debug [--on=error|always] [--invoke CMD] build ...``: the step debugger, as buildx's.

The build runs as ``bkpy build`` would; when one of its RUN steps fails, CMD (a shell by
default) opens on this terminal inside that step's container: its files as the failure
left them, its mounts (cache, secret, ssh, bind), env, workdir and user. When the shell
exits, the build ends with the step's error. With ``--on=always`` a build that succeeds
opens CMD in a container of its result (``bkpy build --invoke CMD`` does the same). The
shell's terminal is this process's own; on a bkpyd the shell runs there and its terminal
is relayed over the build's session (session/terminal handling in session/client.py).
"""

from __future__ import annotations

import shlex

import click

from buildkit_py.errors import UsageError

USAGE = "bkpy debug [--on=error|always] [--invoke CMD] build [OPTIONS] PATH"


@click.command("debug", context_settings={"ignore_unknown_options": True,
                                          "allow_interspersed_args": False})
@click.option("--on", "on", type=click.Choice(["error", "always"]), default="error",
              show_default=True,
              help="error: when a RUN step fails; always: also in the result when the build "
                   "succeeds.")
@click.option("--invoke", default="/bin/sh", show_default=True,
              help="The command to open in the failed step's container.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def debug(ctx: click.Context, on: str, invoke: str, args: tuple[str, ...]) -> None:
    """Build, and open a shell in the container of a step that fails."""
    if not args or args[0] != "build":
        raise UsageError("bkpy debug wraps a build", hint=f"usage: {USAGE}")
    shell = shlex.split(invoke)
    if not shell:
        raise UsageError("--invoke needs a command", hint="e.g. --invoke /bin/sh")
    build_args = list(args[1:])
    # reason: the build command (and the builder) load only when a build runs
    from buildkit_py.cli.build_cmd import build

    ctx.ensure_object(dict)
    ctx.obj.update(debug_shell=shell, debug_on=on)  # read by cli/build_run.py
    with build.make_context("build", build_args, parent=ctx) as sub:
        build.invoke(sub)


