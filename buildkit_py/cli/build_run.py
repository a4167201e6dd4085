"""Run a build request on the selected builder and show its progress."""

from __future__ import annotations

import dataclasses
import sys

import click

from buildkit_py.api.outcome import BuildOutcome
from buildkit_py.api.request import BuildRequest
from buildkit_py.cli.progress_display import Display, make_display
from buildkit_py.client.builders import BuilderStore, open_client
from buildkit_py.errors import UsageError
from buildkit_py.solver.progress import (
    ProgressEvent,
    VertexCached,
    VertexCacheMiss,
    VertexCompleted,
    VertexFailed,
    VertexLog,
    VertexStarted,
    VertexStatus,
)


def feed(display: Display, event: ProgressEvent) -> None:
    """Translate one solver progress event into display calls."""
    if isinstance(event, VertexStarted):
        display.vertex(event.digest, event.name, started=event.started)
    elif isinstance(event, VertexCached):
        display.vertex(event.digest, event.name, started=event.timestamp,
                       completed=event.timestamp, cached=True)
    elif isinstance(event, VertexCompleted):
        display.vertex(event.digest, event.name, started=event.started,
                       completed=event.completed)
    elif isinstance(event, VertexFailed):
        if not event.cancelled:
            display.vertex(event.digest, event.name, started=event.started,
                           completed=event.completed, error=event.error)
    elif isinstance(event, VertexLog):
        display.log(event.digest, event.stream, event.data, event.timestamp)
    elif isinstance(event, VertexCacheMiss):
        display.cache_miss(event.digest, event.name, event.reason)
    elif isinstance(event, VertexStatus):
        display.status(event.digest, event.id, event.current, event.total,
                       event.completed is not None)


def print_warnings(warnings: list[str]) -> None:
    """The summary buildx prints after a build that raised warnings."""
    if not warnings:
        return
    head = "1 warning found" if len(warnings) == 1 else f"{len(warnings)} warnings found"
    head += " (use docker --debug to expand):"
    click.echo("\n " + click.style(head, fg="yellow", reset=True), err=True,
               color=sys.stderr.isatty())
    for warning in warnings:
        click.echo(f" - {warning}", err=True)


def with_debugger(request: BuildRequest, progress: str) -> tuple[BuildRequest, str]:
    """The request and progress mode as ``bkpy debug`` (cli/debug_cmd.py) wants them: its
    shell in the request, and plain progress (a live screen would draw over the shell)."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_object(dict) if ctx is not None else None
    if obj and obj.get("debug_shell"):
        request = dataclasses.replace(request, debug_shell=list(obj["debug_shell"]),
                                      debug_on=str(obj.get("debug_on", "error")))
    if not request.debug_shell:
        return request, progress
    return request, "plain" if progress in ("auto", "tty") else progress


def run_build(request: BuildRequest, *, progress: str, call: str, quiet: bool,
              builder: str | None) -> BuildOutcome:
    store = BuilderStore()
    request, progress = with_debugger(request, progress)
    record = store.selected(builder or None)
    if request.debug_shell and len(record.nodes) > 1:
        raise UsageError(f"the step debugger needs a single-node builder; {record.name!r} has "
                         f"{len(record.nodes)} nodes",
                         hint="use --builder with one of its nodes, or the embedded one")
    client = open_client(record, store)
    display = make_display(progress, sys.stderr)
    try:
        outcome = client.build(request, lambda ev: feed(display, ev))
    except BaseException:
        display.close()
        client.close()
        if progress not in ("quiet", "rawjson"):  # buildx: the warnings, then the error
            print_warnings(display.warnings)
        raise
    display.close()
    client.close()
    if progress not in ("quiet", "rawjson"):
        print_warnings(outcome.warnings)
    if quiet and outcome.image_id:
        click.echo(outcome.image_id)
    return outcome
