"""The ``bkpy`` entry point.

Subcommands live in their own modules and are imported only when invoked, so a
no-op ``bkpy build`` does not pay for importing every room of the builder.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import Any

import click

from buildkit_py import __version__
from buildkit_py.errors import UserError

# command name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "build": "buildkit_py.cli.build_cmd:build",
    "builder": "buildkit_py.cli.builder_cmd:builder",
    "debug": "buildkit_py.cli.debug_cmd:debug",
    "du": "buildkit_py.cli.du_cmd:du",
    "history": "buildkit_py.cli.history_cmd:history",
    "prune": "buildkit_py.cli.du_cmd:prune",
    "server": "buildkit_py.cli.server_cmd:server",
    "dockerfile": "buildkit_py.cli.dockerfile_cmd:dockerfile",
    "image": "buildkit_py.cli.image_cmd:image",
    "images": "buildkit_py.cli.image_cmd:images",
    "imagetools": "buildkit_py.cli.imagetools_cmd:imagetools",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, attr = COMMANDS[cmd_name].split(":")
            cmd: click.Command = getattr(importlib.import_module(module_name), attr)
            return cmd
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bkpy")
@click.option("--debug", is_flag=True, envvar="BKPY_DEBUG", help="Show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """bkpy: build container images BuildKit-style."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if debug:
        os.environ["BKPY_DEBUG"] = "1"


def _debug_enabled() -> bool:
    return os.environ.get("BKPY_DEBUG", "") not in ("", "0", "false")


def main(argv: list[str] | None = None) -> Any:
    """Run the CLI; map user errors to exit codes without tracebacks."""
    try:
        return cli.main(args=argv, prog_name="bkpy", standalone_mode=False)
    except UserError as err:
        if _debug_enabled():
            traceback.print_exc()
        click.echo(err.render(), err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(2 if err.exit_code == 1 else err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as err:  # a bug of ours: say so plainly
        if _debug_enabled():
            traceback.print_exc()
        click.echo(
            f"ERROR: internal error: {type(err).__name__}: {err}\n"
            "hint: re-run with --debug (or BKPY_DEBUG=1) for a traceback and report it",
            err=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
