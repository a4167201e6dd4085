"""``bkpy dockerfile``: inspect Dockerfiles without building them."""

from __future__ import annotations

import sys

import click

from buildkit_py.errors import UsageError


def _read(path: str) -> tuple[bytes, str]:
    """The file's bytes and the name used in error messages (``-`` reads stdin)."""
    if path == "-":
        return sys.stdin.buffer.read(), "Dockerfile"
    try:
        with open(path, "rb") as f:
            return f.read(), path
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror}") from None


@click.group("dockerfile")
def dockerfile() -> None:
    """Inspect Dockerfiles (parse tree, stages, build arguments)."""


@dockerfile.command("ast")
@click.argument("file", metavar="FILE")
def ast_command(file: str) -> None:
    """Print the parse tree of FILE (``-`` for stdin) in BuildKit's dump format."""
    # reason: the Dockerfile parser (~7 ms) stays off --help, which imports every command
    from buildkit_py.frontend.dockerfile.parser import dump_ast, parse_dockerfile

    data, name = _read(file)
    click.echo(dump_ast(parse_dockerfile(data, name)))


@dockerfile.command("targets")
@click.argument("file", metavar="FILE")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def targets_command(file: str, fmt: str) -> None:
    """List the build stages of FILE (what ``bkpy build --call targets`` shows)."""
    # reason: the Dockerfile parser (~35 ms) stays off --help, which imports every command
    from buildkit_py.frontend.dockerfile.instructions import load_dockerfile
    from buildkit_py.frontend.dockerfile.outline import format_targets

    data, name = _read(file)
    click.echo(format_targets(load_dockerfile(data, name), fmt), nl=False)


@dockerfile.command("outline")
@click.argument("file", metavar="FILE")
@click.option("--target", default=None, help="Stage to describe (default: the last one).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def outline_command(file: str, target: str | None, fmt: str) -> None:
    """Show the build args, secrets and ssh ids a target uses (``--call outline``)."""
    # reason: the Dockerfile parser (~35 ms) stays off --help, which imports every command
    from buildkit_py.frontend.dockerfile.instructions import load_dockerfile
    from buildkit_py.frontend.dockerfile.outline import format_outline

    data, name = _read(file)
    click.echo(format_outline(load_dockerfile(data, name), target, fmt), nl=False)


@dockerfile.command("check")
@click.argument("file", metavar="FILE")
def check_command(file: str) -> None:
    """Load FILE into typed instructions and report errors (exit 2) or parse warnings."""
    # reason: the Dockerfile parser (~35 ms) stays off --help, which imports every command
    from buildkit_py.frontend.dockerfile.instructions import load_dockerfile

    data, name = _read(file)
    df = load_dockerfile(data, name)
    for w in df.warnings:
        click.echo(
            f"WARNING: {w.rule}: {w.location.filename}:{w.location.start_line}: {w.message}",
            err=True,
        )
    click.echo(f"{name}: {len(df.stages)} stage(s), {len(df.meta_args)} global ARG line(s)")
