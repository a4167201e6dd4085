"""LLB: the build graph. Ops as protobuf messages, vertex digests, the marshalled
Definition, and a fluent API (``image(...).run([...]).root().file(copy(...))``)."""

from buildkit_py.llb.definition import Definition, Vertex, output_indices
from buildkit_py.llb.digest import digest_bytes, digest_op, serialize_op
from buildkit_py.llb.errors import InvalidDefinitionError, LLBError
from buildkit_py.llb.exec import (
    ExecState,
    Mount,
    SecretEnv,
    bind_mount,
    cache_mount,
    secret_mount,
    ssh_mount,
    tmpfs_mount,
)
from buildkit_py.llb.fileop import Chown, FileAction, copy, mkdir, mkfile, rm, symlink
from buildkit_py.llb.merge import diff, merge
from buildkit_py.llb.metadata import (
    CUSTOM_NAME,
    DOCKERFILE_COMMAND,
    Location,
    ProgressGroup,
    SourceFile,
    source_location,
)
from buildkit_py.llb.platform import format_platform, host_platform, parse_platform
from buildkit_py.llb.source import git, http, image, local, normalize_image_ref
from buildkit_py.llb.state import State, scratch

__all__ = [
    "CUSTOM_NAME",
    "DOCKERFILE_COMMAND",
    "Chown",
    "Definition",
    "ExecState",
    "FileAction",
    "InvalidDefinitionError",
    "LLBError",
    "Location",
    "Mount",
    "ProgressGroup",
    "SecretEnv",
    "SourceFile",
    "State",
    "Vertex",
    "bind_mount",
    "cache_mount",
    "copy",
    "diff",
    "digest_bytes",
    "digest_op",
    "format_platform",
    "git",
    "host_platform",
    "http",
    "image",
    "local",
    "merge",
    "mkdir",
    "mkfile",
    "normalize_image_ref",
    "output_indices",
    "parse_platform",
    "rm",
    "scratch",
    "secret_mount",
    "serialize_op",
    "source_location",
    "ssh_mount",
    "symlink",
    "tmpfs_mount",
]
