"""Run a build request on the selected builder and show its progress."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Any

import click
from click.core import ParameterSource

from buildkit_py.api import annotations as ann
from buildkit_py.api.outcome import BuildOutcome
from buildkit_py.api.outputs import OutputSpec
from buildkit_py.api.request import BuildRequest
from buildkit_py.cli.progress_display import feed, make_display, resolve_mode
from buildkit_py.client.builders import BuilderRecord, BuilderStore, open_client
from buildkit_py.errors import BuildFailedError, UsageError, UserError

__all__ = ["feed", "print_warnings", "run_build", "with_debugger"]


# Progress modes after which buildx prints no warnings summary.
SILENT_MODES = ("quiet", "none", "rawjson")


def _quiet_flag(progress: str) -> bool:
    """``--progress quiet`` on the command line means ``-q`` in buildx (the image id is
    printed); ``none`` and ``BUILDKIT_PROGRESS=quiet`` print nothing."""
    ctx = click.get_current_context(silent=True)
    return (progress == "quiet" and ctx is not None and ctx.params.get("progress") == "quiet"
            and ctx.get_parameter_source("progress") is ParameterSource.COMMANDLINE)


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


_GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")
# The history ref of the build, as the builder puts it into the metadata; the client
# makes it buildx's BUILDER/NODE/REF.
HISTORY_REF_KEY = "buildx.build.ref"


def _no_default_load() -> bool:
    """``BUILDX_NO_DEFAULT_LOAD`` as buildx reads it: a Go boolean; any other value is
    warned about and counts as false."""
    value = os.environ.get("BUILDX_NO_DEFAULT_LOAD")
    if value is None or value in _GO_FALSE:
        return False
    if value in _GO_TRUE:
        return True
    click.echo(f"WARNING: invalid non-bool value for BUILDX_NO_DEFAULT_LOAD: {value}",
               err=True)
    return False


def default_output(request: BuildRequest, record: BuilderRecord,
                   annotations: dict[str, str] | None = None) -> tuple[BuildRequest, str]:
    """A build with no output, as buildx treats it: the embedded builder loads the image
    into the local image store (as buildx's docker driver loads into docker); a daemon
    builder keeps the result in its cache only, and says so (buildx's warning for its
    container drivers, returned to print after the progress). ``BUILDX_NO_DEFAULT_LOAD``
    turns both off, silently as in buildx."""
    if request.call != "build" or request.outputs or _no_default_load():
        return request, ""
    if record.driver == "embedded":
        if not request.tags:  # the store keeps images by name only: nothing to load
            return request, ""
        load = OutputSpec("image", {"load": "true", "name": ",".join(request.tags),
                                    **(annotations or {})})
        return dataclasses.replace(request, outputs=[load]), ""
    return request, (f"WARNING: No output specified with {record.driver} driver. Build "
                     "result will only remain in the build cache. To push result image "
                     "into registry use --push or to load image into docker use --load")


def write_metadata(request: BuildRequest, outcome: BuildOutcome, record: BuilderRecord) -> None:
    """``--metadata-file`` as buildx writes it: the builder's metadata plus
    ``buildx.build.ref`` (BUILDER/NODE/REF, REF the build's history ref, which
    ``bkpy history`` takes), keys sorted, two-space indent."""
    if request.metadata_file is None or request.call != "build":
        return
    meta: dict[str, Any] = dict(outcome.metadata)
    nodes = meta.get("nodes")
    if isinstance(nodes, list):  # a multi-node build: each node's own ref
        for entry in nodes:
            if isinstance(entry, dict) and entry.get(HISTORY_REF_KEY):
                entry[HISTORY_REF_KEY] = \
                    f"{record.name}/{entry.get('name', '')}/{entry[HISTORY_REF_KEY]}"
        first = next((e[HISTORY_REF_KEY] for e in nodes
                      if isinstance(e, dict) and e.get(HISTORY_REF_KEY)), None)
        if first:
            meta[HISTORY_REF_KEY] = first
    elif meta.get(HISTORY_REF_KEY):
        node = record.nodes[0].name if record.nodes else record.name
        meta[HISTORY_REF_KEY] = f"{record.name}/{node}/{meta[HISTORY_REF_KEY]}"
    outcome.metadata = meta
    # the top level sorted (a Go map in buildx), the values as they are
    request.metadata_file.write_text(json.dumps(dict(sorted(meta.items())), indent=2))


def _refuse_index_annotations(request: BuildRequest, record: BuilderRecord) -> None:
    """The client joins a multi-node build's index, which bkpy does not annotate yet: say
    so rather than drop the annotations (manifest ones are made on the nodes)."""
    for spec in request.outputs:
        for name in spec.attrs:
            key = ann.parse_attr(name) if ann.is_annotation_attr(name) else None
            if key is not None and key.type != ann.MANIFEST:
                raise UsageError(f"{key.type} annotations are not supported on a multi-node "
                                 f"builder yet ({record.name!r} has {len(record.nodes)} "
                                 "nodes)", hint="annotate the manifests only, or build on "
                                                "one node")


def run_build(request: BuildRequest, *, progress: str, call: str, quiet: bool,
              builder: str | None, annotations: dict[str, str] | None = None
              ) -> BuildOutcome:
    store = BuilderStore()
    request, progress = with_debugger(request, resolve_mode(progress))
    record = store.selected(builder or None)
    request, no_output_warning = default_output(request, record, annotations)
    if len(record.nodes) > 1:
        _refuse_index_annotations(request, record)
    if request.debug_shell and len(record.nodes) > 1:
        raise UsageError(f"the step debugger needs a single-node builder; {record.name!r} has "
                         f"{len(record.nodes)} nodes",
                         hint="use --builder with one of its nodes, or the embedded one")
    # first: it may refuse the mode
    display = make_display(progress, sys.stderr, (record.name, record.driver))
    client = open_client(record, store)
    try:
        outcome = client.build(request, lambda ev: feed(display, ev))
    except BaseException as err:
        display.close()
        client.close()
        block = err.log_block() if isinstance(err, UserError) else []
        if block and progress not in SILENT_MODES:  # buildx: part of the progress
            click.echo("\n".join(block), err=True)
        if no_output_warning:
            click.echo(no_output_warning, err=True)
        if progress not in SILENT_MODES:  # buildx: the warnings, then the error
            print_warnings(display.warnings)
        if isinstance(err, UserError):
            raise BuildFailedError(err) from err
        raise
    display.close()
    client.close()
    if no_output_warning:  # buildx logs it when the progress ends, before the summary
        click.echo(no_output_warning, err=True)
    write_metadata(request, outcome, record)
    if progress not in SILENT_MODES:
        print_warnings(outcome.warnings)
    if (quiet or _quiet_flag(progress)) and outcome.image_id:
        click.echo(outcome.image_id)
    return outcome
