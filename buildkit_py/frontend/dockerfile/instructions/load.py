"""``load_dockerfile``: parse tree -> typed instructions grouped into stages."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from buildkit_py.errors import DockerfileError
from buildkit_py.frontend.dockerfile.instructions.devices import DeviceError, parse_device
from buildkit_py.frontend.dockerfile.instructions.durations import parse_go_duration
from buildkit_py.frontend.dockerfile.instructions.flags import FlagError, FlagKind, parse_flags
from buildkit_py.frontend.dockerfile.instructions.model import (
    Add,
    Arg,
    ArgDefinition,
    Cmd,
    Copy,
    Dockerfile,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Instruction,
    KeyValuePair,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    SourceContent,
    Stage,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from buildkit_py.frontend.dockerfile.instructions.mounts import MountError, parse_mount
from buildkit_py.frontend.dockerfile.parser.directives import (
    CheckConfig,
    CheckOptionError,
    parse_check_directive,
)
from buildkit_py.frontend.dockerfile.parser.nodes import Heredoc, Node, ParseResult
from buildkit_py.frontend.dockerfile.parser.parse import gc_paused, parse_dockerfile
from buildkit_py.frontend.dockerfile.parser.words import shell_unquote
from buildkit_py.frontend.dockerfile.suggest import suggest
from buildkit_py.gostrings import go_quote

S, B, L = FlagKind.STRING, FlagKind.BOOL, FlagKind.STRINGS
FLAGS: dict[str, dict[str, FlagKind]] = {
    "FROM": {"platform": S},
    "RUN": {"mount": L, "network": S, "security": S, "device": L},
    "COPY": {"from": S, "chown": S, "chmod": S, "link": B, "parents": B, "exclude": L},
    "ADD": {
        "chown": S, "chmod": S, "link": B, "keep-git-dir": B, "checksum": S, "unpack": B,
        "exclude": L,
    },
    "HEALTHCHECK": {
        "interval": S, "timeout": S, "start-period": S, "start-interval": S, "retries": S,
    },
}
KNOWN = (
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
    "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
)
NETWORK_MODES = ("default", "none", "host")
SECURITY_MODES = ("sandbox", "insecure")
_STAGE_NAME = re.compile(r"[a-z][a-z0-9\-_.]*")
_HEREDOC_SOURCE = re.compile(r"(\d*)<<(-?)([^<]*)")
_ONBUILD_PREFIX = re.compile(r"(?i)^\s*ONBUILD\s*")
_MIN_DURATION = 1_000_000  # 1ms


class _Invalid(Exception):
    """An invalid instruction; turned into a DockerfileError with the node's location."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class _Request:
    """What an instruction builder needs from a node."""

    def __init__(self, node: Node, result: ParseResult) -> None:
        self.node = node
        self.name = node.name.upper()
        self.args = node.args
        self.common: dict[str, Any] = {
            "location": result.location(node.start_line, node.end_line),
            "original": node.original,
            "comments": list(node.prev_comment),
            "keyword": node.keyword,
        }

    def flags(self) -> Any:
        try:
            return parse_flags(self.name, self.node.flags, FLAGS.get(self.name, {}))
        except FlagError as err:
            raise _Invalid(str(err), err.hint) from None

    def exactly_one(self) -> str:
        if len(self.args) != 1:
            raise _Invalid(f"{self.name} requires exactly one argument")
        self.flags()
        return self.args[0]

    def at_least_one(self) -> None:
        if not self.args:
            raise _Invalid(f"{self.name} requires at least one argument")


def _from(req: _Request) -> From:
    args = req.args
    name: str | None = None
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME.fullmatch(name):
            raise _Invalid(
                f"invalid name for build stage: {go_quote(args[2])}, "
                "name can't start with a number or contain symbols"
            )
    elif len(args) != 1:
        raise _Invalid(
            "FROM requires either one or three arguments",
            "write FROM <image> or FROM <image> AS <name>",
        )
    flags = req.flags()
    return From(base=args[0], stage_name=name, platform=flags.get("platform"),
                name_as_written=args[2] if name else None,
                as_keyword=args[1] if name else None, **req.common)


def _command(node: Node) -> list[str]:
    """Exec form as is; shell form as the single string handed to the shell."""
    return list(node.args) if node.json else [" ".join(node.args)]


def _command_line(req: _Request, cls: type[Any]) -> Any:
    req.flags()
    return cls(command=_command(req.node), prepend_shell=not req.node.json, **req.common)


def _run(req: _Request) -> Run:
    flags = req.flags()
    mounts = []
    for raw in flags.get_all("mount"):
        try:
            spec = parse_mount(raw)  # the rest is checked when converting, as in BuildKit
        except MountError as err:
            raise _Invalid(str(err), err.hint) from None
        mounts.append(spec)
    network = flags.get("network")
    if network is not None and network not in NETWORK_MODES:
        raise _Invalid(
            f"invalid network mode {go_quote(network)}",
            f"use one of {', '.join(NETWORK_MODES)}",
        )
    security = flags.get("security")
    if security is not None and security not in SECURITY_MODES:
        raise _Invalid(
            f"security {go_quote(security)} is not valid",
            f"use one of {', '.join(SECURITY_MODES)}",
        )
    devices = []
    for raw in flags.get_all("device"):
        try:
            devices.append(parse_device(raw))
        except DeviceError as err:
            raise _Invalid(str(err), "use --device=VENDOR/CLASS=NAME[,required]") from None
    node = req.node
    return Run(
        command=_command(node),
        prepend_shell=not node.json,
        mounts=mounts,
        network=network,
        security=security,
        devices=devices,
        heredocs=list(node.heredocs),
        **req.common,
    )


def _pairs(req: _Request) -> list[KeyValuePair]:
    req.flags()
    args = req.args
    if not args:
        raise _Invalid(f"{req.name} requires at least one argument")
    pairs = []
    for i in range(0, len(args) - 2, 3):
        key, value, delim = args[i], args[i + 1], args[i + 2]
        if not key:
            raise _Invalid(f"{req.name} names can not be blank")
        pairs.append(KeyValuePair(key, value, legacy=delim == ""))
    return pairs


def _heredoc_name(word: str) -> tuple[str, bool] | None:
    """(name, chomp) if ``word`` is a heredoc marker such as ``<<EOF`` or ``<<-"EOF"``."""
    m = _HEREDOC_SOURCE.fullmatch(word)
    if m is None or not m.group(3):
        return None
    return shell_unquote(m.group(3))[0], m.group(2) == "-"


def _sources(req: _Request) -> tuple[list[str], str, list[SourceContent]]:
    if len(req.args) < 2:
        raise _Invalid(
            f"{req.name} requires at least two arguments, but only one was provided. "
            "Destination could not be determined",
            f"write {req.name} <source>... <destination>",
        )
    *srcs, dest = req.args
    if _heredoc_name(dest) is not None:
        raise _Invalid(f"{req.name} cannot accept a heredoc as a destination")
    by_name: dict[str, Heredoc] = {h.name: h for h in req.node.heredocs}
    paths: list[str] = []
    contents: list[SourceContent] = []
    for src in srcs:
        marker = _heredoc_name(src) if not req.node.json else None
        if marker is None:
            paths.append(src)
            continue
        doc = by_name.get(marker[0])
        data = doc.body() if doc is not None else ""
        contents.append(SourceContent(marker[0], data, doc.expand if doc else True))
    return paths, dest, contents


def _copy(req: _Request) -> Copy:
    flags = req.flags()
    paths, dest, contents = _sources(req)
    from_ = flags.get("from")  # variables in it are refused when converting, as BuildKit does
    return Copy(
        sources=paths,
        dest=dest,
        contents=contents,
        from_=from_,
        chown=flags.get("chown"),
        chmod=flags.get("chmod"),
        link=bool(flags.get_bool("link")),
        parents=bool(flags.get_bool("parents")),
        excludes=flags.get_all("exclude"),
        **req.common,
    )


def _add(req: _Request) -> Add:
    flags = req.flags()
    paths, dest, contents = _sources(req)
    return Add(
        sources=paths,
        dest=dest,
        contents=contents,
        chown=flags.get("chown"),
        chmod=flags.get("chmod"),
        link=bool(flags.get_bool("link")),
        keep_git_dir=flags.get_bool("keep-git-dir"),
        checksum=flags.get("checksum"),
        unpack=flags.get_bool("unpack"),
        excludes=flags.get_all("exclude"),
        **req.common,
    )


def _comment_for(comments: list[str], name: str) -> str:
    """BuildKit's rule: a comment line ``<name> <text>`` right above describes ``name``."""
    if not name:
        return ""
    prefix = name + " "
    for line in comments:
        if line.startswith(prefix):
            return line[len(prefix) :]
    return ""


def _arg(req: _Request) -> Arg:
    req.at_least_one()
    req.flags()
    defs = []
    for word in req.args:
        key, eq, value = word.partition("=")
        if eq and not key:
            raise _Invalid("ARG names can not be blank")
        defs.append(
            ArgDefinition(key, value if eq else None, _comment_for(req.node.prev_comment, key))
        )
    return Arg(args=defs, **req.common)


def _duration(flags: Any, name: str) -> int:
    value = flags.get(name)
    if not value:
        return 0
    try:
        ns = parse_go_duration(value)
    except ValueError as err:
        raise _Invalid(str(err), "use a Go duration such as 30s, 1m30s or 500ms") from None
    if ns == 0:
        return 0
    if ns < _MIN_DURATION:
        raise _Invalid(f'Interval "{name}" cannot be less than 1ms')
    return ns


def _healthcheck(req: _Request) -> Healthcheck:
    req.at_least_one()
    flags = req.flags()
    kind = req.args[0].upper()
    rest = req.args[1:]
    if kind == "NONE":
        if rest:
            raise _Invalid("HEALTHCHECK NONE takes no arguments")
        return Healthcheck(test=["NONE"], **req.common)
    if kind != "CMD":
        raise _Invalid(
            f"Unknown type {go_quote(kind)} in HEALTHCHECK (try CMD)",
            "write HEALTHCHECK [options] CMD <command> or HEALTHCHECK NONE",
        )
    if not rest:
        raise _Invalid("Missing command after HEALTHCHECK CMD")
    test = ["CMD", *rest] if req.node.json else ["CMD-SHELL", " ".join(rest)]
    retries = 0
    raw_retries = flags.get("retries")
    if raw_retries:
        try:
            retries = int(raw_retries, 10)
        except ValueError:
            raise _Invalid(
                f'strconv.ParseInt: parsing {go_quote(raw_retries)}: invalid syntax'
            ) from None
        if retries < 0:
            raise _Invalid(f"--retries cannot be negative ({retries})")
    return Healthcheck(
        test=test,
        interval=_duration(flags, "interval"),
        timeout=_duration(flags, "timeout"),
        start_period=_duration(flags, "start-period"),
        start_interval=_duration(flags, "start-interval"),
        retries=retries,
        **req.common,
    )


def _onbuild(req: _Request) -> Onbuild:
    sub = req.node.sub
    if sub is None:
        raise _Invalid("ONBUILD requires at least one argument")
    req.flags()
    trigger = sub.keyword.strip().upper()
    if trigger == "ONBUILD":
        raise _Invalid("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise _Invalid(f"{trigger} isn't allowed as an ONBUILD trigger")
    expression = _ONBUILD_PREFIX.sub("", req.node.original, count=1)
    for doc in req.node.heredocs:  # the trigger carries its heredoc bodies along
        expression += "\n" + doc.content + doc.name
    return Onbuild(expression=expression, trigger=trigger, **req.common)


def _shell(req: _Request) -> Shell:
    req.flags()
    if not req.args:
        raise _Invalid("SHELL requires at least one argument")
    if not req.node.json:
        raise _Invalid(
            "SHELL requires the arguments to be in JSON form",
            'write SHELL ["executable", "parameters"]',
        )
    return Shell(shell=list(req.args), **req.common)


def _volume(req: _Request) -> Volume:
    req.at_least_one()
    req.flags()
    volumes = []
    for v in req.args:
        v = v.strip()
        if not v:
            raise _Invalid("VOLUME specified can not be an empty string")
        volumes.append(v)
    return Volume(volumes=volumes, **req.common)


def _expose(req: _Request) -> Expose:
    req.at_least_one()
    req.flags()
    # BuildKit sorts the raw words (before expansion); its history line keeps that order.
    return Expose(ports=sorted(req.args), **req.common)


BUILDERS: dict[str, Callable[[_Request], Instruction]] = {
    "FROM": _from,
    "RUN": _run,
    "CMD": lambda r: _command_line(r, Cmd),
    "ENTRYPOINT": lambda r: _command_line(r, Entrypoint),
    "ENV": lambda r: Env(pairs=_pairs(r), **r.common),
    "LABEL": lambda r: Label(pairs=_pairs(r), **r.common),
    "MAINTAINER": lambda r: Maintainer(maintainer=r.exactly_one(), **r.common),
    "EXPOSE": _expose,
    "COPY": _copy,
    "ADD": _add,
    "VOLUME": _volume,
    "USER": lambda r: User(user=r.exactly_one(), **r.common),
    "WORKDIR": lambda r: Workdir(path=r.exactly_one(), **r.common),
    "ARG": _arg,
    "ONBUILD": _onbuild,
    "STOPSIGNAL": lambda r: StopSignal(signal=r.exactly_one(), **r.common),
    "HEALTHCHECK": _healthcheck,
    "SHELL": _shell,
}


def build_instruction(node: Node, result: ParseResult) -> Instruction:
    """The typed instruction for one parse-tree node; raises DockerfileError."""
    req = _Request(node, result)
    builder = BUILDERS.get(req.name)
    location = req.common["location"]
    # BuildKit words errors found while typing an instruction "dockerfile parse error on
    # line N: ..."
    if builder is None:
        message = suggest(f"unknown instruction: {node.keyword}", node.keyword, KNOWN,
                          case_sensitive=False)
        raise DockerfileError(message, location, parse_line=node.start_line,
                              hint=None if "did you mean" in message
                              else f"instructions are {', '.join(KNOWN)}")
    try:
        return builder(req)
    except _Invalid as err:
        raise DockerfileError(err.message, location, hint=err.hint,
                              parse_line=node.start_line) from None


def load_dockerfile(
    data: bytes | bytearray | memoryview | str, filename: str = "Dockerfile"
) -> Dockerfile:
    """Parse and type-check a Dockerfile: global ARGs, stages and their instructions."""
    if not data:
        raise DockerfileError("the Dockerfile cannot be empty")
    with gc_paused():
        result = parse_dockerfile(data, filename)
        meta_args: list[Arg] = []
        stages: list[Stage] = []
        for node in result.nodes:
            inst = build_instruction(node, result)
            if isinstance(inst, From):
                stages.append(
                    Stage(
                        index=len(stages),
                        name=inst.stage_name,
                        base=inst.base,
                        platform=inst.platform,
                        description=_comment_for(node.prev_comment, inst.stage_name or ""),
                        from_=inst,
                    )
                )
            elif not stages:
                if not isinstance(inst, Arg):
                    raise DockerfileError(
                        "no build stage in current context",
                        inst.location,
                        hint=f"only ARG may come before the first FROM, not {inst.NAME}",
                    )
                meta_args.append(inst)
            else:
                stages[-1].commands.append(inst)
    if not stages:
        raise DockerfileError(
            "dockerfile contains no stages to build",
            result.location(result.nodes[-1].end_line),
            hint="add a FROM instruction",
        )
    check = CheckConfig()
    check_directive = result.directive("check")
    if check_directive is not None:
        # As BuildKit: only the first word counts, and a malformed value fails the
        # conversion (the linter reports it, worded as BuildKit), not the load.
        try:
            check = parse_check_directive(check_directive.value.split(" ", 1)[0])
        except CheckOptionError:
            check = CheckConfig()
    syntax = result.directive("syntax")
    source = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else bytes(data)
    return Dockerfile(
        filename=filename,
        source=source,
        meta_args=meta_args,
        stages=stages,
        directives=result.directives,
        warnings=result.warnings,
        escape=result.escape,
        syntax=syntax.value.split(" ", 1)[0] if syntax else None,
        check=check,
        parse=result,
    )

