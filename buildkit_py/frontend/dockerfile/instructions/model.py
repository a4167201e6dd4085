"""Typed instructions, one dataclass per Dockerfile instruction (like BuildKit's
``instructions`` package).

Values are kept as written, *unexpanded*: ARG/ENV values are only known while the
converter walks a stage, so it expands at that point. Each class lists in ``EXPANDABLE``
the fields the converter must run through word expansion ($VAR, ${VAR:-x} ...); everything else
is used literally (exec-form commands, SHELL, HEALTHCHECK, ``COPY --from``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from buildkit_py.errors import SourceLocation
from buildkit_py.frontend.dockerfile.instructions.devices import Device
from buildkit_py.frontend.dockerfile.instructions.mounts import Mount, MountSpec
from buildkit_py.frontend.dockerfile.parser.directives import CheckConfig
from buildkit_py.frontend.dockerfile.parser.nodes import (
    Directive,
    Heredoc,
    ParseResult,
    ParseWarning,
)


@dataclass(kw_only=True)
class Instruction:
    """Common to every instruction: where it is and its original text."""

    NAME: ClassVar[str] = ""
    EXPANDABLE: ClassVar[tuple[str, ...]] = ()

    location: SourceLocation
    original: str  # the logical line, continuation characters removed
    comments: list[str] = field(default_factory=list)  # comment lines right above
    keyword: str = ""  # the instruction word as written ("RUN", "run", "Run"), for lint


@dataclass(frozen=True)
class KeyValuePair:
    """An ENV or LABEL entry; ``legacy`` for the ``ENV key value`` form (no ``=``)."""

    key: str
    value: str
    legacy: bool = False


@dataclass(frozen=True)
class ArgDefinition:
    """One ``name[=default]`` of an ARG line; ``description`` from a ``# name ...`` comment."""

    key: str
    value: str | None = None
    description: str = ""


@dataclass(frozen=True)
class SourceContent:
    """A COPY/ADD source given inline as a heredoc: a file named ``path`` holding ``data``."""

    path: str
    data: str
    expand: bool


@dataclass(kw_only=True)
class CommandLine(Instruction):
    """RUN/CMD/ENTRYPOINT: exec form (``prepend_shell`` False) or one shell string."""

    command: list[str]
    prepend_shell: bool


@dataclass(kw_only=True)
class From(Instruction):
    NAME = "FROM"
    EXPANDABLE = ("base", "platform")

    base: str
    stage_name: str | None = None  # lower case, as BuildKit compares names
    platform: str | None = None
    name_as_written: str | None = None  # the stage name before lower-casing (for lint)
    as_keyword: str | None = None  # the "AS" word as written (for lint)


@dataclass(kw_only=True)
class Run(CommandLine):
    NAME = "RUN"
    EXPANDABLE = ("mounts",)  # every --mount value; the command itself is left to the shell

    mounts: list[MountSpec] = field(default_factory=list)
    network: str | None = None  # default | none | host
    security: str | None = None  # sandbox | insecure
    devices: list[Device] = field(default_factory=list)  # --device (CDI)
    heredocs: list[Heredoc] = field(default_factory=list)

    def resolved_mounts(self) -> list[Mount]:
        """Mounts whose values need no expansion, validated (others: ``spec.resolve``)."""
        return [m.resolve() for m in self.mounts if not m.needs_expansion]


@dataclass(kw_only=True)
class Cmd(CommandLine):
    NAME = "CMD"


@dataclass(kw_only=True)
class Entrypoint(CommandLine):
    NAME = "ENTRYPOINT"


@dataclass(kw_only=True)
class Env(Instruction):
    NAME = "ENV"
    EXPANDABLE = ("pairs",)

    pairs: list[KeyValuePair]


@dataclass(kw_only=True)
class Label(Instruction):
    NAME = "LABEL"
    EXPANDABLE = ("pairs",)

    pairs: list[KeyValuePair]


@dataclass(kw_only=True)
class Maintainer(Instruction):
    NAME = "MAINTAINER"

    maintainer: str


@dataclass(kw_only=True)
class Expose(Instruction):
    NAME = "EXPOSE"
    EXPANDABLE = ("ports",)

    ports: list[str]


@dataclass(kw_only=True)
class Copy(Instruction):
    NAME = "COPY"
    EXPANDABLE = ("sources", "dest", "chown", "chmod", "excludes")

    sources: list[str]  # context (or --from) paths
    dest: str
    contents: list[SourceContent] = field(default_factory=list)  # heredoc sources
    from_: str | None = None
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    parents: bool = False
    excludes: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class Add(Instruction):
    NAME = "ADD"
    EXPANDABLE = ("sources", "dest", "chown", "chmod", "checksum", "excludes")

    sources: list[str]
    dest: str
    contents: list[SourceContent] = field(default_factory=list)
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    keep_git_dir: bool | None = None
    checksum: str | None = None
    unpack: bool | None = None  # None: extract local archives, never remote files
    excludes: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class Volume(Instruction):
    NAME = "VOLUME"
    EXPANDABLE = ("volumes",)

    volumes: list[str]


@dataclass(kw_only=True)
class User(Instruction):
    NAME = "USER"
    EXPANDABLE = ("user",)

    user: str


@dataclass(kw_only=True)
class Workdir(Instruction):
    NAME = "WORKDIR"
    EXPANDABLE = ("path",)

    path: str


@dataclass(kw_only=True)
class Arg(Instruction):
    NAME = "ARG"
    EXPANDABLE = ("args",)  # default values

    args: list[ArgDefinition]


@dataclass(kw_only=True)
class Onbuild(Instruction):
    NAME = "ONBUILD"

    expression: str  # the trigger as stored in the image config (heredoc bodies appended)
    trigger: str  # upper-case name of the wrapped instruction


@dataclass(kw_only=True)
class StopSignal(Instruction):
    NAME = "STOPSIGNAL"
    EXPANDABLE = ("signal",)

    signal: str


@dataclass(kw_only=True)
class Healthcheck(Instruction):
    """``test`` is ``["NONE"]``, ``["CMD", args...]`` or ``["CMD-SHELL", command]``.

    Durations are nanoseconds; 0 means "runtime default".
    """

    NAME = "HEALTHCHECK"

    test: list[str]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(kw_only=True)
class Shell(Instruction):
    NAME = "SHELL"

    shell: list[str]


@dataclass
class Stage:
    """A FROM and the instructions up to the next FROM."""

    index: int
    name: str | None  # lower case; None for an unnamed stage
    base: str  # unexpanded image / stage reference
    platform: str | None
    description: str  # from a "# <name> <description>" comment right above FROM
    from_: From
    commands: list[Instruction] = field(default_factory=list)

    @property
    def display_name(self) -> str:
        """The name BuildKit uses in progress output (``stage-N`` for unnamed stages)."""
        return self.name or f"stage-{self.index}"

    @property
    def location(self) -> SourceLocation:
        return self.from_.location


@dataclass
class Dockerfile:
    """A loaded Dockerfile: global ARGs, stages, directives and parse warnings."""

    filename: str
    source: bytes
    meta_args: list[Arg]
    stages: list[Stage]
    directives: list[Directive]
    warnings: list[ParseWarning]
    escape: str
    syntax: str | None
    check: CheckConfig
    parse: ParseResult

    def stage(self, ref: str) -> Stage | None:
        """The stage named ``ref`` (case-insensitive) or with that 0-based index."""
        lowered = ref.lower()
        for st in self.stages:
            if st.name == lowered:
                return st
        if ref.isdigit():
            index = int(ref)
            if index < len(self.stages):
                return self.stages[index]
        return None

    @property
    def default_stage(self) -> Stage:
        """The stage built without ``--target``: the last one."""
        return self.stages[-1]
