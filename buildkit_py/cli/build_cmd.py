"""``bkpy build``: options as in ``docker buildx build`` (the same flags and meanings)."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import click
from click.core import ParameterSource

from buildkit_py.api.annotations import parse_flags as parse_annotations
from buildkit_py.api.outputs import OutputSpec, parse_output
from buildkit_py.api.request import BuildRequest, parse_secret, parse_ssh
from buildkit_py.cli.git_labels import git_labels
from buildkit_py.config import ENTITLEMENTS, check_entitlement
from buildkit_py.errors import BuildFailedError, UsageError, UserError
from buildkit_py.platforms import parse_platform
from buildkit_py.units import parse_csv_kv, parse_ulimit, ram_in_bytes

CALL_MODES = ("build", "check", "outline", "targets")
PROGRESS_MODES = ("auto", "tty", "plain", "rawjson", "quiet", "none")


def _with_epoch(args: dict[str, str]) -> dict[str, str]:
    """As buildx: SOURCE_DATE_EPOCH from the environment is passed as a build arg (so
    ``ARG SOURCE_DATE_EPOCH`` sees it) unless one is given."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and "SOURCE_DATE_EPOCH" not in args:
        args["SOURCE_DATE_EPOCH"] = epoch
    return args


def _extra_host(value: str) -> tuple[str, str]:
    """buildx's --add-host: ``HOST=IP``, or ``HOST:IP`` (split at the first colon, so an
    IPv6 address needs the ``=`` form)."""
    name, sep, ip = value.partition("=") if "=" in value else value.partition(":")
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise UsageError(f"--add-host {value}: invalid IP address {ip!r}",
                         hint="use HOST:IP or HOST=IP, e.g. --add-host db:10.0.0.5") from None
    if not sep or not name:
        raise UsageError(f"--add-host {value}: expected HOST:IP or HOST=IP")
    return name, ip


def _shm_size(value: str | None) -> int:
    if not value:
        return 0
    try:
        return ram_in_bytes(value)
    except ValueError as err:
        raise UsageError(f'invalid argument "{value}" for "--shm-size" flag: {err}',
                         hint="use a size such as 128m or 1g") from None


def _ulimits(values: tuple[str, ...]) -> list[tuple[str, int, int]]:
    """buildx's --ulimit NAME=SOFT[:HARD], repeatable; a later one for a name wins."""
    found: dict[str, tuple[str, int, int]] = {}
    for value in values:
        try:
            u = parse_ulimit(value)
        except ValueError as err:
            raise UsageError(f'invalid argument "{value}" for "--ulimit" flag: {err}',
                             hint="use NAME=SOFT[:HARD], e.g. --ulimit nofile=1024:2048") \
                from None
        found[u.name] = (u.name, u.soft, u.hard)
    return list(found.values())


def _entitlements(allow: tuple[str, ...], network: str) -> list[str]:
    """The --allow entitlements, checked as buildx does; ``--network host`` grants
    network.host by itself."""
    values: list[str] = []
    for entry in allow:  # repeatable, comma lists; device=NAME,alias=X stays whole
        for part in entry.split(","):
            if values and values[-1].startswith("device=") and "=" in part \
                    and part.partition("=")[0] not in ENTITLEMENTS:
                values[-1] += "," + part
            elif part:
                values.append(part)
    out = [check_entitlement(value, "--allow") for value in values]
    if network == "host":
        out.append("network.host")
    return list(dict.fromkeys(out))


def _check_quiet(progress: str, quiet: bool) -> None:
    """buildx takes ``-q`` only with the default progress or ``quiet`` (``none`` counts as
    quiet) and fails with exit 1 otherwise; ``BUILDKIT_PROGRESS`` is not ``--progress``
    there (the flag defaults to auto), so only a mode given on the command line counts."""
    ctx = click.get_current_context(silent=True)
    given = ctx is not None and \
        ctx.get_parameter_source("progress") is ParameterSource.COMMANDLINE
    if quiet and given and progress not in ("auto", "quiet", "none"):
        raise UserError(f"progress={progress} and quiet cannot be used together")


def _parse_annotations(values: tuple[str, ...]) -> dict[str, str]:
    """buildx parses annotations once the build has started, so their errors are worded
    ``failed to build: parse annotations: ...`` (the exit code stays bkpy's)."""
    try:
        return parse_annotations(values)
    except UserError as err:
        raise BuildFailedError(err) from err


def _check_platforms(values: list[str]) -> None:
    """As buildx: a bad --platform fails the build before any progress is shown, worded
    ``failed to build: ...`` (the exit code stays bkpy's)."""
    try:
        for value in values:
            parse_platform(value)
    except UserError as err:
        raise BuildFailedError(err) from err


def _metadata_warnings() -> bool:
    """buildx writes the build's warnings into --metadata-file only when
    BUILDX_METADATA_WARNINGS is a true Go boolean."""
    return os.environ.get("BUILDX_METADATA_WARNINGS", "") in (
        "1", "t", "T", "TRUE", "true", "True")


def _kv_list(values: tuple[str, ...], what: str, *, env_fallback: bool = False) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid {what} {item!r}", hint=f"use {what} KEY=VALUE")
        if not sep:
            if not env_fallback:
                raise UsageError(f"invalid {what} {item!r}", hint=f"use {what} KEY=VALUE")
            env_value = os.environ.get(key)
            if env_value is None:
                continue  # buildx: a KEY without value and unset in the env is skipped
            value = env_value
        out[key] = value
    return out


def _cache_specs(values: tuple[str, ...], flag: str) -> list[dict[str, str]]:
    """``--cache-to``/``--cache-from`` values, checked before anything is built."""
    if not values:
        return []
    # reason: the cache options' grammar loads only for builds that give them
    from buildkit_py.remotecache.spec import export_spec, import_spec, parse_cache_arg

    out = [parse_cache_arg(v, flag) for v in values]
    for attrs in out:
        (export_spec if flag == "--cache-to" else import_spec)(attrs)
    return out


@dataclass
class _Input:
    """Where the build's context and Dockerfile come from (buildx's loadInputs)."""

    context: Path | None = None
    dockerfile: Path | None = None
    data: bytes = b""
    context_url: str | None = None
    dockerfile_in_context: str | None = None


def _remote_input(url: str, file: str | None) -> _Input:
    """A Git or HTTP(S) context, fetched by the builder. As buildx: ``-f`` names a path in
    it (relative to the repository's subdir), an absolute ``-f`` a file on this machine,
    ``-f -`` stdin."""
    if file == "-":
        return _Input(data=sys.stdin.buffer.read(), context_url=url)
    if file and os.path.isabs(file):
        local = _read_dockerfile(".", file)
        return _Input(dockerfile=local.dockerfile, data=local.data, context_url=url)
    return _Input(context_url=url, dockerfile_in_context=file or "Dockerfile")


def _is_remote(context: str) -> bool:
    if context == "-" or Path(context).is_dir():  # a local directory wins, as in buildx
        return False
    # reason: the frontend's URL grammar (~35 ms) only when the context is no directory
    from buildkit_py.frontend.dockerfile.convert.remote_context import is_remote_url

    return is_remote_url(context)


def _read_dockerfile(context: str, file: str | None) -> _Input:
    if context == "-":
        if file not in (None, "-"):
            raise UsageError("cannot combine a Dockerfile from stdin with -f")
        return _Input(data=sys.stdin.buffer.read())
    if _is_remote(context):
        return _remote_input(context, file)
    ctx = Path(context)
    if not ctx.is_dir():
        raise UsageError(f"build context {context!r} is not a directory",
                         hint="pass a directory, a Git URL (https://HOST/REPO.git#REF:DIR, "
                              "git@HOST:REPO) or an HTTP(S) URL of a tarball")
    if file == "-":
        return _Input(ctx, None, sys.stdin.buffer.read())
    path = Path(file) if file else ctx / "Dockerfile"
    try:
        return _Input(ctx, path, path.read_bytes())
    except FileNotFoundError:
        raise UsageError(f"failed to read dockerfile: open {path}: no such file or directory",
                         hint="pass -f PATH or add a Dockerfile to the context") from None
    except IsADirectoryError:
        raise UsageError(f"failed to read dockerfile: {path} is a directory") from None


@click.command("build")
@click.argument("context")
@click.option("-f", "--file", "file", help="Dockerfile (default: CONTEXT/Dockerfile).")
@click.option("-t", "--tag", "tags", multiple=True, help="Name the image (repeatable).")
@click.option("--target", help="Build only this stage and what it needs.")
@click.option("--platform", "platforms", multiple=True, help="linux/amd64,linux/arm64,...")
@click.option("--build-arg", "build_args", multiple=True, help="KEY=VALUE (repeatable).")
@click.option("--build-context", "build_contexts", multiple=True, help="NAME=VALUE named context.")
@click.option("--secret", "secrets", multiple=True, help="id=ID[,src=PATH|,env=VAR].")
@click.option("--ssh", "ssh", multiple=True, help="default[=SOCKET] agent forwarding.")
@click.option("--no-cache", is_flag=True, help="Do not use the cache.")
@click.option("--no-cache-filter", "no_cache_filter", multiple=True,
              help="Do not use the cache for these stages.")
@click.option("--pull", is_flag=True, help="Re-resolve base images even if cached.")
@click.option("-o", "--output", "outputs", multiple=True, help="Exporter: type=...,dest=...")
@click.option("--push", is_flag=True, help="Shorthand for --output type=image,push=true.")
@click.option("--load", is_flag=True, help="Put the result into the local image store.")
@click.option("--cache-to", "cache_to", multiple=True,
              help="Cache export: type=registry,ref=REF|type=local,dest=DIR|type=inline.")
@click.option("--cache-from", "cache_from", multiple=True,
              help="Cache import (repeatable): REF|type=registry,ref=REF|type=local,src=DIR.")
@click.option("--progress", type=click.Choice(PROGRESS_MODES), default="auto",
              envvar="BUILDKIT_PROGRESS", show_default=True,
              help="quiet: print the image id at the end; none: print nothing.")
@click.option("--metadata-file", type=click.Path(dir_okay=False), help="Write build metadata.")
@click.option("--iidfile", type=click.Path(dir_okay=False), help="Write the image id.")
@click.option("--label", "labels", multiple=True, help="KEY=VALUE image label.")
@click.option("--annotation", "annotations", multiple=True,
              help="Add an annotation to the image: [TYPE[,TYPE...]:]KEY=VALUE, TYPE index, "
                   "manifest, index-descriptor, manifest-descriptor, optionally with "
                   "[PLATFORM] (repeatable).")
@click.option("--network", type=click.Choice(["default", "none", "host"]), default="default")
@click.option("--add-host", "add_hosts", multiple=True,
              help="Add a custom host-to-IP mapping to RUN steps (HOST:IP or HOST=IP).")
@click.option("--shm-size", "shm_size", help="Size of /dev/shm in RUN steps (e.g. 128m).")
@click.option("--ulimit", "ulimits", multiple=True,
              help="Resource limit of RUN steps: NAME=SOFT[:HARD] (repeatable).")
@click.option("--allow", "allow", multiple=True,
              help='Allow an entitlement: "network.host", "security.insecure", "device[=NAME]".')
@click.option("--builder", envvar="BKPY_BUILDER", help="Builder to use.")
@click.option("--call", "call", default="build", help="build|check|outline|targets")
@click.option("--check", "check", is_flag=True, help='Shorthand for "--call=check".')
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              help="Output format for --call.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image id.")
@click.option("--invoke", default=None,
              help="After the build, open CMD in a container of its result (or of a RUN "
                   "step that failed); embedded builder only.")
def build(context: str, file: str | None, tags: tuple[str, ...], target: str | None,
          platforms: tuple[str, ...], build_args: tuple[str, ...],
          build_contexts: tuple[str, ...], secrets: tuple[str, ...], ssh: tuple[str, ...],
          no_cache: bool, no_cache_filter: tuple[str, ...], pull: bool,
          outputs: tuple[str, ...], push: bool, load: bool, cache_to: tuple[str, ...],
          cache_from: tuple[str, ...], progress: str, metadata_file: str | None,
          iidfile: str | None, labels: tuple[str, ...], annotations: tuple[str, ...],
          network: str,
          add_hosts: tuple[str, ...], shm_size: str | None, ulimits: tuple[str, ...],
          allow: tuple[str, ...], builder: str | None,
          call: str, check: bool, fmt: str, quiet: bool, invoke: str | None) -> None:
    """Build an image from a Dockerfile and a context directory."""
    if check:
        call = "check"
    call, _, call_opts = call.partition(",")
    if call not in CALL_MODES:
        raise UsageError(f"--call {call!r}: unknown", hint=f"use one of {', '.join(CALL_MODES)}")
    if call_opts:
        fmt = parse_csv_kv(call_opts, "--call").get("format", fmt)
    _check_quiet(progress, quiet)  # buildx: before the build starts (and any --call)
    inp = _read_dockerfile(context, file)
    ctx, dockerfile, data = inp.context, inp.dockerfile, inp.data

    if call in ("outline", "targets"):
        if inp.dockerfile_in_context is not None:
            raise UsageError(f"--call {call} reads the Dockerfile on this machine: it cannot "
                             "read one inside a remote context yet",
                             hint="pass -f with a local Dockerfile, or clone the repository")
        # reason: the Dockerfile parser (~35 ms) stays off --help, which imports every command
        from buildkit_py.frontend.dockerfile import load_dockerfile
        from buildkit_py.frontend.dockerfile.outline import format_outline, format_targets
        from buildkit_py.frontend.dockerfile.syntax import frontend_of

        df = load_dockerfile(data, str(dockerfile or "Dockerfile"))
        frontend_of(df, _kv_list(build_args, "--build-arg", env_fallback=True))
        text = format_targets(df, fmt) if call == "targets" else format_outline(df, target, fmt)
        click.echo(text, nl=not text.endswith("\n"))
        return

    if call == "check":  # lint only: nothing is built or exported
        outputs, push, load = (), False, False
    output_specs = [parse_output(o) for o in outputs]
    if push:
        output_specs.append(OutputSpec("image", {"push": "true"}))
    if load:
        output_specs.append(OutputSpec("image", {"load": "true"}))
    annotation_attrs = _parse_annotations(annotations)
    for spec in output_specs:
        if spec.kind.named and "name" not in spec.attrs and tags:
            spec.attrs["name"] = ",".join(tags)
        spec.attrs.update(annotation_attrs)  # as buildx: on every output
    plat_list = [p.strip() for item in platforms for p in item.split(",") if p.strip()]
    _check_platforms(plat_list)

    request = BuildRequest(
        context=ctx,
        dockerfile=dockerfile,
        dockerfile_data=data,
        tags=list(tags),
        target=target,
        platforms=plat_list,
        build_args=_with_epoch(_kv_list(build_args, "--build-arg", env_fallback=True)),
        build_contexts=_kv_list(build_contexts, "--build-context"),
        secrets=[parse_secret(s) for s in secrets],
        ssh=[parse_ssh(s) for s in ssh],
        no_cache=no_cache,
        no_cache_filter=[s for item in no_cache_filter for s in item.split(",") if s],
        pull=pull,
        outputs=output_specs,
        labels={**_kv_list(labels, "--label"), **git_labels(ctx, dockerfile)},
        network=network,
        extra_hosts=[_extra_host(h) for h in add_hosts],
        shm_size=_shm_size(shm_size),
        ulimits=_ulimits(ulimits),
        entitlements=_entitlements(allow, network),
        cache_to=_cache_specs(cache_to, "--cache-to"),
        cache_from=_cache_specs(cache_from, "--cache-from"),
        metadata_file=Path(metadata_file) if metadata_file else None,
        iidfile=Path(iidfile) if iidfile else None,
        context_url=inp.context_url,
        dockerfile_in_context=inp.dockerfile_in_context,
        call=call,
        metadata_warnings=_metadata_warnings(),
    )
    if invoke is not None:
        shell = shlex.split(invoke)
        if not shell:
            raise UsageError("--invoke needs a command", hint="e.g. --invoke /bin/sh")
        request = dataclasses.replace(request, debug_shell=shell, debug_on="always")
    # reason: the build client (~13 ms: solver progress, display) stays off --help, --call
    from buildkit_py.cli.build_run import run_build

    outcome = run_build(request, progress="quiet" if quiet else progress, call=call,
                        quiet=quiet, builder=builder, annotations=annotation_attrs)
    if call == "check":
        # reason: the lint result printer is for --call check only
        from buildkit_py.cli.check_result import exit_with, print_check_result, source_name

        exit_with(print_check_result(outcome.metadata, fmt, source_name(context, file)))
