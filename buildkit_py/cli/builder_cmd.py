"""``bkpy builder create|ls|use|inspect|rm|stop``: buildx-like builder management."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from buildkit_py.api.workers import GCRuleInfo, WorkerInfo
from buildkit_py.client.builders import (
    DEFAULT_BUILDER,
    DRIVER_OPTS,
    DRIVERS,
    BuilderRecord,
    BuilderStore,
    Node,
    check_name,
    default_daemon_root,
    embedded_config,
    node_endpoint,
    node_status,
    remote_client,
    start_daemon,
    stop_daemon,
)
from buildkit_py.errors import UsageError
from buildkit_py.units import bytes_size


def _platforms(values: tuple[str, ...]) -> list[str]:
    # reason: ~1.5 ms on --help, which imports every command
    from buildkit_py.platforms import parse_platform

    out = []
    for item in values:
        for p in item.split(","):
            if p.strip():
                out.append(parse_platform(p.strip()).format())
    return out


def _driver_opts(driver: str, values: tuple[str, ...]) -> dict[str, str]:
    opts: dict[str, str] = {}
    for item in (v for entry in values for v in entry.split(",")):  # repeated or a,b=... as buildx
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--driver-opt {item!r}: expected KEY=VALUE")
        if key not in DRIVER_OPTS[driver]:
            raise UsageError(f"--driver-opt {key}: not an option of the {driver} driver",
                             hint=f"options: {', '.join(DRIVER_OPTS[driver])}")
        if key in ("cacert", "cert", "key", "root", "config"):
            value = str(Path(value).expanduser().absolute())
        opts[key] = value
    return opts


def _check_endpoint(endpoint: str) -> str:
    if endpoint.startswith("unix://"):
        return "unix://" + str(Path(endpoint.removeprefix("unix://")).absolute())
    if endpoint.startswith("tcp://"):
        host, _, port = endpoint.removeprefix("tcp://").rpartition(":")
        if host and port.isdigit():
            return endpoint
    raise UsageError(f"invalid endpoint {endpoint!r}", hint="use unix:///PATH or tcp://HOST:PORT")


@click.group("builder")
def builder() -> None:
    """Manage builders (embedded, local daemon, remote daemons)."""


@builder.command("create")
@click.argument("endpoint", required=False)
@click.option("--name", help="Builder name (default: generated).")
@click.option("--driver", type=click.Choice(DRIVERS),
              help="embedded, daemon (a local bkpyd started on demand) or remote "
                   "(default: remote with an ENDPOINT, else daemon).")
@click.option("--driver-opt", "driver_opts", multiple=True,
              help="KEY=VALUE: remote: cacert, cert, key, servername; daemon/embedded: "
                   "root, config.")
@click.option("--node", "node_name", help="Name of the node (default: BUILDER + index).")
@click.option("--platform", "platforms", multiple=True,
              help="Platforms this node builds (preferred when routing).")
@click.option("--append", is_flag=True, help="Add a node to an existing builder.")
@click.option("--use", "use_it", is_flag=True, help="Make it the current builder.")
def create(endpoint: str | None, name: str | None, driver: str | None,
           driver_opts: tuple[str, ...], node_name: str | None, platforms: tuple[str, ...],
           append: bool, use_it: bool) -> None:
    """Create a builder, or add a node to one (--append)."""
    store = BuilderStore()
    if append:
        if not name:
            raise UsageError("--append needs --name of an existing builder")
        rec = store.get(name)
        if driver and driver != rec.driver:
            raise UsageError(f"builder {name!r} uses the {rec.driver} driver, not {driver}")
        if rec.driver == "embedded":
            raise UsageError("an embedded builder has exactly one node")
    else:
        if name is None:
            n = 0
            while store.exists(f"builder{n}"):
                n += 1
            name = f"builder{n}"
        check_name(name)
        if store.exists(name):
            raise UsageError(f"builder {name!r} already exists",
                             hint="use --append to add a node, or another --name")
        rec = BuilderRecord(name, driver or ("remote" if endpoint else "daemon"))
    if rec.driver == "remote":
        if not endpoint:
            raise UsageError("the remote driver needs an ENDPOINT (unix:///PATH or "
                             "tcp://HOST:PORT)")
        endpoint = _check_endpoint(endpoint)
    elif endpoint:
        raise UsageError(f"the {rec.driver} driver takes no ENDPOINT",
                         hint="use --driver remote to connect to a running bkpyd")
    node = Node(check_name(node_name or f"{rec.name}{len(rec.nodes)}", "node"),
                endpoint or "", _platforms(platforms), _driver_opts(rec.driver, driver_opts))
    if any(n.name == node.name for n in rec.nodes):
        raise UsageError(f"builder {rec.name!r} already has a node {node.name!r}")
    if rec.driver == "daemon" and "root" not in node.driver_opts:
        node.driver_opts["root"] = str(default_daemon_root(rec.name, node.name))
    rec.nodes.append(node)
    store.save(rec)
    if use_it:
        store.use(rec.name)
    click.echo(rec.name)


@builder.command("ls")
def ls() -> None:
    """List builders and their nodes."""
    store = BuilderStore()
    current = store.current()
    rows = [("NAME/NODE", "DRIVER/ENDPOINT", "STATUS", "PLATFORMS")]
    for rec in store.list():
        mark = " *" if rec.name == current else ""
        rows.append((rec.name + mark, rec.driver, "", ""))
        for node in rec.nodes:
            endpoint = node_endpoint(store, rec, node) if rec.driver != "embedded" else \
                str(embedded_config(node).root)
            rows.append((f" \\_ {node.name}", endpoint, node_status(store, rec, node),
                         ", ".join(node.platforms)))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        click.echo("  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]),
                              r[2].ljust(widths[2]), r[3]]).rstrip())


@builder.command("use")
@click.argument("name")
def use(name: str) -> None:
    """Make NAME the current builder."""
    BuilderStore().use(name)


def _node_workers(store: BuilderStore, rec: BuilderRecord, node: Node) -> list[WorkerInfo]:
    if rec.driver == "embedded":
        # reason: the embedded client (~7 ms) stays off --help, which imports every command
        from buildkit_py.client.embedded import EmbeddedClient

        return EmbeddedClient(embedded_config(node)).workers()
    client = remote_client(store, rec, node)
    try:
        return client.workers()
    finally:
        client.close()


@builder.command("inspect")
@click.argument("name", required=False)
@click.option("--bootstrap", is_flag=True, help="Start the builder's daemons first.")
def inspect(name: str | None, bootstrap: bool) -> None:
    """Show a builder's driver, nodes, status, platforms, labels and GC policy."""
    store = BuilderStore()
    rec = store.selected(name)
    if bootstrap and rec.driver == "daemon":
        for node in rec.nodes:
            start_daemon(store, rec, node)
    click.echo(f"Name:          {rec.name}")
    click.echo(f"Driver:        {rec.driver}")
    for node in rec.nodes:
        status = node_status(store, rec, node)
        click.echo("")
        click.echo(f"Name:          {node.name}")
        if rec.driver == "embedded":
            click.echo(f"Root:          {embedded_config(node).root}")
        else:
            click.echo(f"Endpoint:      {node_endpoint(store, rec, node)}")
        if node.driver_opts:
            opts = ", ".join(f"{k}={v}" for k, v in sorted(node.driver_opts.items()))
            click.echo(f"Driver Opts:   {opts}")
        click.echo(f"Status:        {status}")
        plats = list(node.platforms)
        workers = _node_workers(store, rec, node) if status == "running" else []
        for w in workers:
            if w.version:
                click.echo(f"Version:       {w.version}")
            plats += [p for p in w.platforms if p not in plats]
        if plats:
            click.echo(f"Platforms:     {', '.join(plats)}")
        for w in workers:
            if w.labels:
                click.echo("Labels:")
                _aligned([(f"{k}:", w.labels[k]) for k in sorted(w.labels)])
            for i, rule in enumerate(w.gc_rules):
                click.echo(f"GC Policy rule#{i}:")
                _aligned(_gc_rule_lines(rule))


def _aligned(rows: list[tuple[str, str]]) -> None:
    """Indented ``key: value`` lines with the values in one column, as buildx's tabwriter
    lays out each block of ``inspect``."""
    width = max(len(k) for k, _ in rows) + 1
    for key, value in rows:
        click.echo(f" {key.ljust(width)}{value}")


def _gc_rule_lines(rule: GCRuleInfo) -> list[tuple[str, str]]:
    """One GC rule as buildx prints it: the sizes and duration only when set."""
    # reason: the duration formatter's package (~40 ms) stays off other commands
    from buildkit_py.frontend.dockerfile.instructions.durations import format_go_duration

    rows = [("All:", "true" if rule.all else "false")]
    if rule.filters:
        rows.append(("Filters:", " ".join(rule.filters)))
    if rule.keep_duration > 0:
        rows.append(("Keep Duration:", format_go_duration(round(rule.keep_duration * 1e9))))
    for key, value in (("Reserved Space:", rule.reserved_space),
                       ("Max Used Space:", rule.max_used_space),
                       ("Min Free Space:", rule.min_free_space)):
        if value > 0:
            rows.append((key, bytes_size(value)))
    return rows


@builder.command("rm")
@click.argument("name", required=False)
@click.option("--keep-state", is_flag=True, help="Keep a daemon builder's state directory.")
def rm(name: str | None, keep_state: bool) -> None:
    """Remove a builder (stopping its daemons)."""
    store = BuilderStore()
    rec = store.get(name or store.current())
    if rec.name == DEFAULT_BUILDER:
        raise UsageError("the default builder cannot be removed")
    if rec.driver == "daemon":
        for node in rec.nodes:
            stop_daemon(store, rec, node)
            shutil.rmtree(store.daemon_dir(rec, node), ignore_errors=True)
            if not keep_state and node.driver_opts.get("root"):
                shutil.rmtree(node.driver_opts["root"], ignore_errors=True)
    store.remove(rec.name)


@builder.command("stop")
@click.argument("name", required=False)
def stop(name: str | None) -> None:
    """Stop a daemon builder's bkpyd (it starts again on the next build)."""
    store = BuilderStore()
    rec = store.get(name or store.current())
    if rec.driver != "daemon":
        return
    for node in rec.nodes:
        stop_daemon(store, rec, node)
