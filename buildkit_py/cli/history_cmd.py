"""``bkpy history ls|inspect|logs|rm|export|import``: the builds a builder recorded.

The history is kept by the builder that ran the builds (:mod:`builder.history_store`):
for the embedded builder and a ``daemon``-driver bkpyd on this machine it is read from
their state root, for a ``remote`` bkpyd over its History RPC
(:mod:`client.remote_history`), through the same few calls.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from buildkit_py.builder.history_store import (
    DOCKERFILE,
    EVENTS,
    FAILED,
    FAILED_TAR,
    HistoryStore,
    log_name,
)
from buildkit_py.client.builders import (
    BuilderStore,
    default_daemon_root,
    embedded_config,
)
from buildkit_py.errors import UsageError, UserError
from buildkit_py.solver import progress as events

if TYPE_CHECKING:
    from buildkit_py.client.remote_history import RemoteHistory

builder_option = click.option("--builder", default=None, envvar="BUILDX_BUILDER",
                              help="Builder whose history to read (default: the selected one).")


def _store(builder: str | None) -> HistoryStore | RemoteHistory:
    """The selected builder's history: its root's for the embedded builder and a
    daemon-driver bkpyd here (readable whether it runs or not), over the wire otherwise."""
    rec = BuilderStore().selected(builder or None)
    node = rec.nodes[0]
    if rec.driver == "embedded":
        return HistoryStore(embedded_config(node).root)
    if rec.driver == "daemon":
        root = node.driver_opts.get("root") or str(default_daemon_root(rec.name, node.name))
        return HistoryStore(Path(root))
    if len(rec.nodes) > 1:
        raise UsageError(f"builder {rec.name!r} has {len(rec.nodes)} nodes: each keeps its own "
                         "history", hint="name one node's builder with --builder")
    # reason: the remote client (grpc, ~50 ms) only for a remote builder's history
    from buildkit_py.client.builders import remote_client
    from buildkit_py.client.remote_history import RemoteHistory

    return RemoteHistory(remote_client(BuilderStore(), rec, node), rec.name)


def _when(ts: Any) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(ts))) if ts else "-"


def _duration(record: dict[str, Any]) -> str:
    if record.get("duration") is None:
        return f"{time.time() - float(record['started_at']):.1f}s+"
    return f"{float(record['duration']):.1f}s"


def _name(record: dict[str, Any]) -> str:
    req = record.get("request") or {}
    name = str(req.get("context") or "-")
    if req.get("target"):
        name += f" ({req['target']})"
    return name


@click.group("history")
def history() -> None:
    """Builds this builder ran: their definition, settings, outcome and whole logs.

    Every build is recorded as it runs (kept per [history] in the builder config:
    50 builds for 48 hours by default). REF is a build's ref, a unique prefix of it,
    ^N (the Nth before the newest) or nothing (the newest).
    """


@history.command("ls")
@builder_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def ls(builder: str | None, fmt: str) -> None:
    """List the recorded builds, newest first."""
    records = _store(builder).records()
    if fmt == "json":
        click.echo(json.dumps(records, indent=2))
        return
    rows = [("BUILD ID", "NAME", "STATUS", "CREATED AT", "DURATION")]
    for r in records:
        rows.append((str(r["ref"]), _name(r), str(r.get("status", "?")).capitalize(),
                     _when(r.get("started_at")), _duration(r)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        click.echo("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=False))
                   + "   " + row[4])


@history.command("inspect")
@builder_option
@click.argument("ref", required=False)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def inspect(builder: str | None, ref: str | None, fmt: str) -> None:
    """Show a build: what was asked, how it ended, each step."""
    store = _store(builder)
    record = store.resolve(ref)
    if fmt == "json":
        record = dict(record, dockerfile=_dockerfile(store, record))
        click.echo(json.dumps(record, indent=2))
        return
    req = record.get("request") or {}
    lines = [
        ("Ref", record["ref"]),
        ("Context", req.get("context") or "-"),
        ("Dockerfile", req.get("dockerfile") or "-"),
        ("Target", req.get("target") or "-"),
        ("Platforms", ", ".join(req.get("platforms") or []) or "(this machine's)"),
        ("Tags", ", ".join(req.get("tags") or []) or "-"),
        ("Outputs", ", ".join(req.get("outputs") or []) or "-"),
        ("Started", _when(record.get("started_at"))),
        ("Duration", _duration(record)),
        ("Status", str(record.get("status", "?")).capitalize()),
        ("Build steps", f"{len(record.get('steps') or [])} "
                        f"({record.get('cached', 0)} cached, {record.get('ran', 0)} ran)"),
    ]
    if record.get("image_id"):
        lines.append(("Image", record["image_id"]))
    for key, label in (("build_args", "Build arg"), ("labels", "Label")):
        for name, value in sorted((req.get(key) or {}).items()):
            lines.append((label, f"{name}={value}"))
    width = max(len(k) for k, _ in lines) + 1
    for key, value in lines:
        click.echo(f"{key + ':':<{width}} {value}")
    if record.get("error"):
        click.echo("\nError:\n" + str(record["error"]).rstrip())
    failed = record.get("failed_step")
    if failed:
        click.echo(f"\nFailed step: #{failed['index']} {failed['name']} "
                   f"(`bkpy history logs {record['ref'][:12]} --step {failed['index']}`)")
        if record.get("failed_state"):
            click.echo(f"Post-mortem: `bkpy history debug {record['ref'][:12]}` opens a shell "
                       "in its container as it failed")
    if record.get("warnings"):
        click.echo(f"\nWarnings ({len(record['warnings'])}):")
        for w in record["warnings"]:
            click.echo(f" - {w}")
    click.echo("\nSteps:")
    for step in record.get("steps") or []:
        state = ("CACHED" if step.get("cached") else "ERROR" if step.get("error")
                 else f"{float(step['completed']) - float(step['started']):.1f}s"
                 if "completed" in step and "started" in step else "-")
        size = f"  log {step['log_bytes']} bytes" if step.get("log_bytes") else ""
        click.echo(f"  #{step['index']:<3} {state:<7} {step.get('name', '')}{size}")


def _dockerfile(store: HistoryStore | RemoteHistory, record: dict[str, Any]) -> str:
    return b"".join(store.read_chunks(str(record["ref"]), DOCKERFILE)).decode(errors="replace")


_TYPES = {cls.__name__: cls for cls in (
    events.VertexStarted, events.VertexCached, events.VertexCacheMiss,
    events.VertexCompleted, events.VertexFailed, events.VertexStatus)}


def _replay(store: HistoryStore | RemoteHistory, ref: str) -> list[events.ProgressEvent]:
    """The recorded progress events, log data read back from the step logs."""
    index: dict[str, int] = {}
    out: list[events.ProgressEvent] = []
    step_logs: dict[int, bytes] = {}
    text = b"".join(store.read_chunks(ref, EVENTS)).decode(errors="replace")
    for line in text.splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue  # a line cut short by a killed build
        kind = data.pop("type", "")
        digest = data.get("digest", "")
        n = index.setdefault(digest, len(index) + 1)
        if kind == "VertexLog":
            if n not in step_logs:
                step_logs[n] = b"".join(store.read_chunks(ref, log_name(n)))
            start = int(data["offset"])
            out.append(events.VertexLog(digest, int(data["stream"]),
                                        step_logs[n][start:start + int(data["length"])],
                                        float(data["timestamp"])))
        elif kind in _TYPES:
            out.append(_TYPES[kind](**data))
    return out


@history.command("logs")
@builder_option
@click.argument("ref", required=False)
@click.option("--step", type=int, default=None,
              help="Print only step #N's own output, whole and raw.")
@click.option("--progress", type=click.Choice(["plain", "rawjson"]), default="plain",
              show_default=True, help="How to print the build's progress.")
def logs(builder: str | None, ref: str | None, step: int | None, progress: str) -> None:
    """Print a build's logs: its progress as it ran, never clipped."""
    store = _store(builder)
    record = store.resolve(ref)
    if step is not None:
        steps = {int(s["index"]): s for s in record.get("steps") or []}
        if step not in steps:
            raise UserError(f"build {record['ref']} has no step #{step}",
                            hint=f"its steps are #1 to #{len(steps)}")
        for chunk in store.read_chunks(str(record["ref"]), log_name(step)):
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return
    # reason: the progress printers load only here, not for ls/inspect
    from buildkit_py.cli.progress_display import feed, make_display

    display = make_display(progress, sys.stdout)
    try:
        for ev in _replay(store, str(record["ref"])):
            feed(display, ev)
    finally:
        display.close()
    if record.get("status") == "failed" and record.get("error"):
        click.echo(str(record["error"]).rstrip())


@history.command("rm")
@builder_option
@click.argument("refs", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Remove every recorded build.")
def rm(builder: str | None, refs: tuple[str, ...], all_: bool) -> None:
    """Remove recorded builds."""
    store = _store(builder)
    if not refs and not all_:
        raise UsageError("name the builds to remove, or --all")
    records = store.records() if all_ else [store.resolve(r) for r in refs]
    for record in records:
        store.remove(str(record["ref"]))
        click.echo(str(record["ref"]))


@history.command("export")
@builder_option
@click.argument("ref", required=False)
@click.option("-o", "--output", "output", required=True, type=click.Path(path_type=Path),
              help="The bundle to write (a .tar.gz).")
def export(builder: str | None, ref: str | None, output: Path) -> None:
    """Write a build (record, Dockerfile, whole logs) as a bundle another machine opens
    with `bkpy history import`."""
    store = _store(builder)
    record = store.resolve(ref)
    if record.get("status") == "running":
        raise UserError(f"build {record['ref']} is still running",
                        hint="export it when it has ended")
    store.export(str(record["ref"]), output)


@history.command("import")
@builder_option
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_(builder: str | None, bundle: Path) -> None:
    """Add a build exported elsewhere to this builder's history."""
    click.echo(_store(builder).import_bundle(bundle))


@history.command("debug")
@builder_option
@click.argument("ref", required=False)
@click.option("--invoke", default="/bin/sh", show_default=True,
              help="The command to open in the failed step's container.")
def debug(builder: str | None, ref: str | None, invoke: str) -> None:
    """Post-mortem: open a shell in a past build's failed RUN step, as it failed."""
    record_ = BuilderStore().selected(builder or None)
    if record_.driver != "embedded":
        raise UsageError("a post-mortem needs the embedded builder (it opens the builder's "
                         "root)", hint="run it on the daemon's machine with BKPY_ROOT set")
    store = _store(builder)
    assert isinstance(store, HistoryStore)  # an embedded builder's
    record = store.resolve(ref)
    state = record.get("failed_state")
    if not state:
        raise UserError(f"build {record['ref']} kept no failed RUN step",
                        hint="only a build whose RUN step failed can be opened")
    shell = shlex.split(invoke)
    if not shell:
        raise UsageError("--invoke needs a command", hint="e.g. --invoke /bin/sh")
    # reason: the builder core loads only for a post-mortem, not for ls/inspect/logs
    from buildkit_py.builder.debug_result import open_on_failed_step
    from buildkit_py.client.embedded import open_builder

    config = embedded_config(record_.nodes[0])
    with open_builder(config) as b:
        open_on_failed_step(b.worker, state,
                            store.path(str(record["ref"])) / FAILED / FAILED_TAR, shell)
