"""Per-stage conversion state (BuildKit's ``dispatchState``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from buildkit_py import llb
from buildkit_py.errors import SourceLocation
from buildkit_py.frontend.dockerfile.buildargs import ArgScope
from buildkit_py.frontend.dockerfile.convert.image_config import ImageConfig
from buildkit_py.frontend.dockerfile.convert.names import StepNamer
from buildkit_py.frontend.dockerfile.instructions.model import Instruction, Stage
from buildkit_py.platforms import Platform


@dataclass(eq=False)
class Command:
    """An instruction to dispatch plus the stages it reads (``--from``, ``from=``)."""

    instr: Instruction
    sources: list[StageState | None] = field(default_factory=list)
    onbuild: bool = False


@dataclass(eq=False)
class StageState:
    """One stage (or an image/context used by ``--from``) while it is converted."""

    index: int
    name: str  # lower-cased ``AS`` name, "" when unnamed
    base_name: str  # expanded FROM argument (or the ``--from`` reference)
    location: SourceLocation | None
    stage: Stage | None = None  # None for an implicit ``--from`` image
    platform: Platform | None = None  # explicit FROM --platform, later the effective one
    base: StageState | None = None
    deps: dict[StageState, Instruction] = field(default_factory=dict)  # stage -> instr
    commands: list[Command] = field(default_factory=list)
    state: llb.State = field(default_factory=llb.scratch)
    image: ImageConfig | None = None
    scope: ArgScope | None = None
    namer: StepNamer = field(default_factory=StepNamer)
    resolved: bool = False
    dispatched: bool = False
    initialised: bool = False
    onbuild_init: bool = False
    implicit: bool = False  # created for ``COPY --from=<image>``, not a Dockerfile stage
    ignore_cache: bool = False
    cmd_set: bool = False  # a CMD was set in this stage (ENTRYPOINT keeps it then)
    from_image: bool = False  # based on a registry image (FROM counts as a step)
    workdir_set: bool = False  # a WORKDIR of this Dockerfile ran (WorkdirRelativePath)
    # where CMD / ENTRYPOINT / HEALTHCHECK were last set (MultipleInstructionsDisallowed)
    last_set: dict[str, SourceLocation] = field(default_factory=dict)

    @property
    def display_name(self) -> str:
        return self.name or f"stage-{self.index}"
