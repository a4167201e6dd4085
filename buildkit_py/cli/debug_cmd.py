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

USAGE = ("bkpy debug [--on=error|always] [--invoke CMD] build [OPTIONS] PATH\n"
         "       bkpy debug [--invoke CMD] exec [STEP TEXT]")


@click.command("debug", context_settings={"ignore_unknown_options": True,
                                          "allow_interspersed_args": False})
@click.option("--on", "on", type=click.Choice(["error", "always"]), default="error",
              show_default=True,
              help="error: when a RUN step fails; always: also in the result when the build "
                   "succeeds.")
@click.option("--invoke", default="/bin/sh", show_default=True,
              help="The command to open in the step's (or the result's) container.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def debug(ctx: click.Context, on: str, invoke: str, args: tuple[str, ...]) -> None:
    """Debug a build: `debug build ...` opens a shell in a RUN step that fails (or in the
    result, --on=always); `debug exec [TEXT]` opens one inside a step running now."""
    if not args or args[0] not in ("build", "exec"):
        raise UsageError("bkpy debug wraps a build (or execs into a running step)",
                         hint=f"usage: {USAGE}")
    shell = shlex.split(invoke)
    if not shell:
        raise UsageError("--invoke needs a command", hint="e.g. --invoke /bin/sh")
    if args[0] == "exec":
        _exec_into_running_step(" ".join(args[1:]), shell)
        return
    build_args = list(args[1:])
    # reason: the build command (and the builder) load only when a build runs
    from buildkit_py.cli.build_cmd import build

    ctx.ensure_object(dict)
    ctx.obj.update(debug_shell=shell, debug_on=on)  # read by cli/build_run.py
    with build.make_context("build", build_args, parent=ctx) as sub:
        build.invoke(sub)




def _exec_into_running_step(text: str, shell: list[str]) -> None:
    """CMD inside a RUN step that is running now on this machine's builder (the embedded
    one, or a daemon-driver bkpyd here), found by its name; the step goes on meanwhile."""
    # reason: the builders, the executor and the terminal load only for `debug exec`
    from pathlib import Path

    from buildkit_py.client.builders import (
        BuilderStore,
        default_daemon_root,
        embedded_config,
    )
    from buildkit_py.errors import UserError
    from buildkit_py.executor.executor import Executor

    rec = BuilderStore().selected(None)
    node = rec.nodes[0]
    if rec.driver not in ("embedded", "daemon"):
        raise UsageError(f"`bkpy debug exec` opens steps on this machine; builder {rec.name!r} "
                         "is a remote bkpyd", hint="run it on the daemon's machine")
    config = embedded_config(node)
    if rec.driver == "daemon":
        config.root = Path(node.driver_opts.get("root")
                           or default_daemon_root(rec.name, node.name))
    executor = Executor(config.oci_runtime, config.root / "worker" / "executor",
                        fork_server=False)
    try:
        running = executor.running_steps()
        matching = [(cid, name) for cid, name in running if text in name]
        if len(matching) != 1:
            names = "; ".join(name for _, name in running) or "none"
            what = ("no RUN step is running" if not running
                    else f"no running step matches {text!r}" if not matching
                    else f"{len(matching)} running steps match")
            raise UserError(f"{what} on this builder (running: {names})",
                            hint="name one: bkpy debug exec TEXT (part of the step's name)")
        cid, name = matching[0]
        click.echo(f"bkpy debug: opening {' '.join(shell)} in the running step {name} "
                   "(the step goes on meanwhile). Exit the shell to finish.", err=True)
        executor.exec_interactive(cid, shell)
        click.echo("bkpy debug: the shell ended", err=True)
    finally:
        executor.close()
