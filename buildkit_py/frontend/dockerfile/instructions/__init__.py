"""Typed Dockerfile instructions (like BuildKit's ``instructions`` package).

``load_dockerfile`` parses a Dockerfile and turns every node into a dataclass with
validated flags, grouped into :class:`Stage` objects after the global ARGs.
"""

from buildkit_py.frontend.dockerfile.instructions.durations import (
    format_go_duration,
    parse_go_duration,
)
from buildkit_py.frontend.dockerfile.instructions.load import (
    FLAGS,
    KNOWN,
    build_instruction,
    load_dockerfile,
)
from buildkit_py.frontend.dockerfile.instructions.model import (
    Add,
    Arg,
    ArgDefinition,
    Cmd,
    CommandLine,
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
from buildkit_py.frontend.dockerfile.instructions.mounts import (
    Mount,
    MountError,
    MountSpec,
    parse_mount,
)

__all__ = [
    "FLAGS",
    "KNOWN",
    "Add",
    "Arg",
    "ArgDefinition",
    "Cmd",
    "CommandLine",
    "Copy",
    "Dockerfile",
    "Entrypoint",
    "Env",
    "Expose",
    "From",
    "Healthcheck",
    "Instruction",
    "KeyValuePair",
    "Label",
    "Maintainer",
    "Mount",
    "MountError",
    "MountSpec",
    "Onbuild",
    "Run",
    "Shell",
    "SourceContent",
    "Stage",
    "StopSignal",
    "User",
    "Volume",
    "Workdir",
    "build_instruction",
    "format_go_duration",
    "load_dockerfile",
    "parse_go_duration",
    "parse_mount",
]
