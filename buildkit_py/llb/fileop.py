"""File ops: chains of mkdir / mkfile / rm / symlink / copy applied to a filesystem.

``mkdir("/a").copy(src, "x", "/a/")`` builds a chain; ``State.file(chain)`` applies it.
Each action works on the previous action's result; only the last one is the op's output.
Relative paths resolve against the working dir of the state the chain is applied to
(for a copy source: the source state's working dir). Sources and the base are any
``FsRef`` (a ``State``): ``State.file`` builds the ``FileNode``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from buildkit_py.llb import ops_pb2
from buildkit_py.llb.chmod import compile_symbolic
from buildkit_py.llb.errors import LLBError
from buildkit_py.llb.metadata import OpMeta
from buildkit_py.llb.node import FsRef, InputIndexer, OpNode, Output
from buildkit_py.llb.paths import join_path

_OCTAL = re.compile(r"^[0-7]{1,4}$")

Timestamp = int | datetime | None


@dataclass(frozen=True)
class Chown:
    """Owner for created files: user/group each a numeric id or a name (looked up in
    the destination's /etc/passwd and /etc/group); None leaves it unset."""

    user: int | str | None = None
    group: int | str | None = None

    @classmethod
    def parse(cls, spec: str) -> Chown:
        """Parse ``user[:group]`` as BuildKit's llb.WithUser: all-digit parts (and
        ``root``) become numeric ids; an empty user is a name nothing matches (so 0)."""
        user, sep, group = spec.partition(":")
        return cls(_id_or_name(user), _id_or_name(group) if sep else None)


def _id_or_name(part: str) -> int | str:
    if part == "root":
        return 0
    return int(part) if part.isdigit() and int(part) < 2**31 else part


Owner = Chown | str | int | None


def _owner(owner: Owner) -> Chown | None:
    if owner is None or isinstance(owner, Chown):
        return owner
    if isinstance(owner, int):
        return Chown(owner)
    return Chown.parse(owner)


def _fill_owner(msg: ops_pb2.ChownOpt, owner: Chown, base_index: int) -> None:
    for field, value in (("user", owner.user), ("group", owner.group)):
        if value is None:
            continue
        opt: ops_pb2.UserOpt = getattr(msg, field)
        if isinstance(value, int):
            opt.by_id = value
        else:
            opt.by_name.name = value
            opt.by_name.input = base_index


def _timestamp(ts: Timestamp) -> int:
    if ts is None:
        return -1
    if isinstance(ts, datetime):
        return int(ts.timestamp()) * 1_000_000_000 + ts.microsecond * 1000
    return ts


def _check_path(what: str, path: str) -> None:
    if not path:
        raise LLBError(f"{what} path must not be empty")


ActionBody = (
    ops_pb2.FileActionMkDir
    | ops_pb2.FileActionMkFile
    | ops_pb2.FileActionRm
    | ops_pb2.FileActionSymlink
    | ops_pb2.FileActionCopy
)

# Which field of each action body is a path resolved against the base state's dir.
_BASE_PATH_FIELD = {
    "FileActionMkDir": "path",
    "FileActionMkFile": "path",
    "FileActionRm": "path",
    "FileActionSymlink": "newpath",
    "FileActionCopy": "dest",
}
_ONEOF_FIELD = {
    "FileActionMkDir": "mkdir",
    "FileActionMkFile": "mkfile",
    "FileActionRm": "rm",
    "FileActionSymlink": "symlink",
    "FileActionCopy": "copy",
}


class FileAction:
    """One link of an action chain; chain more with the methods named like the actions."""

    __slots__ = ("body", "owner", "prev", "source")

    def __init__(self, prev: FileAction | None, body: ActionBody, owner: Chown | None = None,
                 source: FsRef | None = None) -> None:
        self.prev = prev
        self.body = body
        self.owner = owner
        self.source = source  # the copy source

    def chain(self) -> list[FileAction]:
        """The actions from the first to this one."""
        out: list[FileAction] = []
        node: FileAction | None = self
        while node is not None:
            out.append(node)
            node = node.prev
        out.reverse()
        return out

    def mkdir(self, path: str, mode: int = 0o755, *, make_parents: bool = False,
              owner: Owner = None, timestamp: Timestamp = None) -> FileAction:
        """Then create directory ``path``."""
        return mkdir(path, mode, make_parents=make_parents, owner=owner, timestamp=timestamp,
                     _prev=self)

    def mkfile(self, path: str, mode: int = 0o644, data: bytes | str = b"", *,
               owner: Owner = None, timestamp: Timestamp = None) -> FileAction:
        """Then write file ``path`` with ``data``."""
        return mkfile(path, mode, data, owner=owner, timestamp=timestamp, _prev=self)

    def rm(self, path: str, *, allow_not_found: bool = False,
           allow_wildcard: bool = False) -> FileAction:
        """Then remove ``path``."""
        return rm(path, allow_not_found=allow_not_found, allow_wildcard=allow_wildcard,
                  _prev=self)

    def symlink(self, oldpath: str, newpath: str, *, owner: Owner = None,
                timestamp: Timestamp = None) -> FileAction:
        """Then create symlink ``newpath`` -> ``oldpath``."""
        return symlink(oldpath, newpath, owner=owner, timestamp=timestamp, _prev=self)

    def copy(self, src: FsRef, src_path: str, dest: str, **opts: Any) -> FileAction:
        """Then copy ``src_path`` of ``src`` to ``dest`` (options as for :func:`copy`)."""
        return copy(src, src_path, dest, _prev=self, **opts)


def mkdir(path: str, mode: int = 0o755, *, make_parents: bool = False, owner: Owner = None,
          timestamp: Timestamp = None, _prev: FileAction | None = None) -> FileAction:
    """Create directory ``path`` (and its parents with ``make_parents``)."""
    _check_path("mkdir", path)
    body = ops_pb2.FileActionMkDir(path=path, mode=mode, make_parents=make_parents,
                                   timestamp=_timestamp(timestamp))
    return FileAction(_prev, body, _owner(owner))


def mkfile(path: str, mode: int = 0o644, data: bytes | str = b"", *, owner: Owner = None,
           timestamp: Timestamp = None, _prev: FileAction | None = None) -> FileAction:
    """Create (or overwrite) file ``path`` holding ``data``."""
    _check_path("mkfile", path)
    raw = data.encode() if isinstance(data, str) else bytes(data)
    body = ops_pb2.FileActionMkFile(path=path, mode=mode, data=raw,
                                    timestamp=_timestamp(timestamp))
    return FileAction(_prev, body, _owner(owner))


def rm(path: str, *, allow_not_found: bool = False, allow_wildcard: bool = False,
       _prev: FileAction | None = None) -> FileAction:
    """Remove ``path`` (recursively)."""
    _check_path("rm", path)
    body = ops_pb2.FileActionRm(path=path, allow_not_found=allow_not_found,
                                allow_wildcard=allow_wildcard)
    return FileAction(_prev, body)


def symlink(oldpath: str, newpath: str, *, owner: Owner = None, timestamp: Timestamp = None,
            _prev: FileAction | None = None) -> FileAction:
    """Create symlink ``newpath`` pointing at ``oldpath`` (kept verbatim)."""
    _check_path("symlink", newpath)
    body = ops_pb2.FileActionSymlink(oldpath=oldpath, newpath=newpath,
                                     timestamp=_timestamp(timestamp))
    return FileAction(_prev, body, _owner(owner))


def copy(
    src: FsRef,
    src_path: str,
    dest: str,
    *,
    owner: Owner = None,
    mode: int | str | None = None,
    follow_symlinks: bool = False,
    dir_copy_contents: bool = False,
    attempt_unpack: bool = False,
    create_dest_path: bool = False,
    allow_wildcard: bool = False,
    allow_empty_wildcard: bool = False,
    include_patterns: Sequence[str] = (),
    exclude_patterns: Sequence[str] = (),
    required_paths: Sequence[str] = (),
    always_replace_existing_dest_paths: bool = False,
    parents: bool = False,
    timestamp: Timestamp = None,
    _prev: FileAction | None = None,
) -> FileAction:
    """Copy ``src_path`` of ``src`` to ``dest``; a dest ending in ``/`` is a directory.

    ``mode`` is an int, an octal string (``"755"``) or symbolic (``"u+x,go-w"``);
    ``attempt_unpack`` extracts local tar archives like Dockerfile ADD.
    """
    _check_path("copy source", src_path)
    _check_path("copy destination", dest)
    mode_int, mode_str = -1, ""
    if isinstance(mode, int):
        mode_int = mode
    elif isinstance(mode, str):
        if _OCTAL.match(mode):
            mode_int = int(mode, 8)
        elif not mode[:1].isdigit() and compile_symbolic(mode) is not None:
            mode_str = mode
        else:
            raise LLBError(f"invalid file mode {mode!r}", hint="use octal (0755) or u+x style")
    body = ops_pb2.FileActionCopy(
        src=join_path(src.cwd, src_path),
        dest=dest,
        mode=mode_int,
        mode_str=mode_str,
        follow_symlink=follow_symlinks,
        dir_copy_contents=dir_copy_contents,
        attempt_unpack_docker_compatibility=attempt_unpack,
        create_dest_path=create_dest_path,
        allow_wildcard=allow_wildcard,
        allow_empty_wildcard=allow_empty_wildcard,
        include_patterns=include_patterns,
        exclude_patterns=exclude_patterns,
        required_paths=required_paths,
        always_replace_existing_dest_paths=always_replace_existing_dest_paths,
        parents=parents,
        timestamp=_timestamp(timestamp),
    )
    return FileAction(_prev, body, _owner(owner), source=src)


class FileNode(OpNode):
    """A file op: the chain of actions applied to ``base``."""

    platform_specific = False  # file actions do not depend on the target platform

    def __init__(self, base: FsRef, action: FileAction, *, platform: ops_pb2.Platform | None,
                 meta: OpMeta) -> None:
        super().__init__(platform, meta)
        self.base = base.output
        self.actions = action.chain()
        # Resolve relative paths now, against the dir of the state the chain applies to.
        self.bodies: list[ActionBody] = []
        for a in self.actions:
            body = type(a.body)()
            body.CopyFrom(a.body)  # type: ignore[arg-type]
            field = _BASE_PATH_FIELD[type(body).__name__]
            setattr(body, field, join_path(base.cwd, getattr(body, field)))
            self.bodies.append(body)

    def inputs(self) -> Sequence[Output]:
        outs = [self.base] if self.base is not None else []
        outs.extend(a.source.output for a in self.actions if a.source and a.source.output)
        return outs

    def fill(self, op: ops_pb2.Op, idx: InputIndexer) -> None:
        base_index = idx.input(self.base)
        secondaries = [idx.input(a.source.output) if a.source else -1 for a in self.actions]
        n_inputs = len(op.inputs)  # every input is known now; action results follow them
        last = len(self.actions) - 1
        for i, (action, body) in enumerate(zip(self.actions, self.bodies, strict=True)):
            current = base_index if i == 0 else n_inputs + i - 1
            pa = op.file.actions.add(input=current, secondary_input=secondaries[i],
                                     output=0 if i == last else -1)
            target = getattr(pa, _ONEOF_FIELD[type(body).__name__])
            target.CopyFrom(body)
            if action.owner is not None:
                # Names resolve in the filesystem being written (the action's own input).
                _fill_owner(target.owner, action.owner, current)
