"""LLB: the build graph. Ops as protobuf messages, vertex digests, the marshalled
Definition, and a fluent API (``image(...).run([...]).root().file(copy(...))``)."""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from buildkit_py.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from buildkit_py.llb.definition import Definition, Vertex, output_indices
    from buildkit_py.llb.digest import digest_bytes, digest_op, serialize_op
    from buildkit_py.llb.errors import InvalidDefinitionError, LLBError
    from buildkit_py.llb.exec import (
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
    from buildkit_py.llb.state import ExecState, State, scratch

# Exported name -> defining module, imported on first access: importing one submodule
# (e.g. ``ops_pb2``) must not pull in the whole package.
_LAZY: dict[str, str] = {
    "CUSTOM_NAME": "buildkit_py.llb.metadata",
    "Chown": "buildkit_py.llb.fileop",
    "DOCKERFILE_COMMAND": "buildkit_py.llb.metadata",
    "Definition": "buildkit_py.llb.definition",
    "ExecState": "buildkit_py.llb.state",
    "FileAction": "buildkit_py.llb.fileop",
    "InvalidDefinitionError": "buildkit_py.llb.errors",
    "LLBError": "buildkit_py.llb.errors",
    "Location": "buildkit_py.llb.metadata",
    "Mount": "buildkit_py.llb.exec",
    "ProgressGroup": "buildkit_py.llb.metadata",
    "SecretEnv": "buildkit_py.llb.exec",
    "SourceFile": "buildkit_py.llb.metadata",
    "State": "buildkit_py.llb.state",
    "Vertex": "buildkit_py.llb.definition",
    "bind_mount": "buildkit_py.llb.exec",
    "cache_mount": "buildkit_py.llb.exec",
    "copy": "buildkit_py.llb.fileop",
    "diff": "buildkit_py.llb.merge",
    "digest_bytes": "buildkit_py.llb.digest",
    "digest_op": "buildkit_py.llb.digest",
    "format_platform": "buildkit_py.llb.platform",
    "git": "buildkit_py.llb.source",
    "host_platform": "buildkit_py.llb.platform",
    "http": "buildkit_py.llb.source",
    "image": "buildkit_py.llb.source",
    "local": "buildkit_py.llb.source",
    "merge": "buildkit_py.llb.merge",
    "mkdir": "buildkit_py.llb.fileop",
    "mkfile": "buildkit_py.llb.fileop",
    "normalize_image_ref": "buildkit_py.llb.source",
    "output_indices": "buildkit_py.llb.definition",
    "parse_platform": "buildkit_py.llb.platform",
    "rm": "buildkit_py.llb.fileop",
    "scratch": "buildkit_py.llb.state",
    "secret_mount": "buildkit_py.llb.exec",
    "serialize_op": "buildkit_py.llb.digest",
    "source_location": "buildkit_py.llb.metadata",
    "ssh_mount": "buildkit_py.llb.exec",
    "symlink": "buildkit_py.llb.fileop",
    "tmpfs_mount": "buildkit_py.llb.exec",
}

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


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


class _Package(types.ModuleType):
    """``merge`` names both a submodule and the function exported here. Loading a
    submodule binds it onto the package, which would hide the function; keep the
    function (as the eager re-export did)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
