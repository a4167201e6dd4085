"""Resolve a RUN user (``name``, ``uid``, ``user:group``) against the rootfs' passwd/group files.

Follows BuildKit's rules: a ``uid:gid`` pair of numbers (``root`` counts as 0) is taken as is
without reading any file; otherwise ``/etc/passwd`` and ``/etc/group`` inside the rootfs are
consulted. The primary gid is always part of the additional gids (CVE-2023-25173 fix).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from buildkit_py import rootpath
from buildkit_py.errors import BuildError
from buildkit_py.executor.errors import UnknownUserError

_MAX_FILE = 10 * 1024 * 1024


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = field(default=())


@dataclass(frozen=True)
class _PasswdEntry:
    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class _GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


def _parse_id(word: str) -> int | None:
    if word == "root":
        return 0
    if word.isdigit():
        value = int(word)
        if value < 2**32:
            return value
    return None


def _read_user_file(root: Path, path: str) -> list[list[str]] | None:
    """Fields of each line of a passwd-style file inside root; None when it does not exist."""
    host = rootpath.resolve(root, path)
    try:
        fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BuildError(f"cannot read {path} in the rootfs: {exc.strerror}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise BuildError(f"{path} in the rootfs is not a regular file")
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(_MAX_FILE + 1)
    if len(data) > _MAX_FILE:
        raise BuildError(f"{path} in the rootfs is larger than {_MAX_FILE} bytes")
    rows = []
    for line in data.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        rows.append(line.split(":"))
    return rows


def _passwd(root: Path) -> list[_PasswdEntry] | None:
    rows = _read_user_file(root, "/etc/passwd")
    if rows is None:
        return None
    out = []
    for row in rows:
        if len(row) < 4 or not row[2].isdigit() or not row[3].isdigit():
            continue
        out.append(_PasswdEntry(row[0], int(row[2]), int(row[3])))
    return out


def _groups(root: Path) -> list[_GroupEntry] | None:
    rows = _read_user_file(root, "/etc/group")
    if rows is None:
        return None
    out = []
    for row in rows:
        if len(row) < 3 or not row[2].isdigit():
            continue
        members = tuple(m for m in row[3].split(",") if m) if len(row) > 3 else ()
        out.append(_GroupEntry(row[0], int(row[2]), members))
    return out


def _with_primary(gid: int, extra: list[int]) -> tuple[int, ...]:
    seen = [gid]
    for g in extra:
        if g not in seen:
            seen.append(g)
    return tuple(seen)


def resolve_user(root: Path, user: str) -> Identity:
    """Resolve ``user`` (as in USER / ExecOp meta.user) inside the rootfs at ``root``."""
    username, sep, groupname = user.partition(":")
    if sep:
        uid, gid = _parse_id(username), _parse_id(groupname)
        if uid is not None and gid is not None:
            return Identity(uid, gid, (gid,))
    if not username:
        username = "0"

    entries = _passwd(root)
    uid_num = _parse_id(username)
    match: _PasswdEntry | None = None
    for entry in entries or []:
        if entry.name == username or (uid_num is not None and entry.uid == uid_num):
            match = entry
            break
    if match is None:
        if uid_num is None:
            raise UnknownUserError(
                f"unable to find user {username}: no matching entries in passwd file"
            )
        match = _PasswdEntry("", uid_num, 0)

    if groupname:
        gid_num = _parse_id(groupname)
        if gid_num is None:
            found = [g for g in _groups(root) or [] if g.name == groupname]
            if not found:
                raise UnknownUserError(
                    f"unable to find group {groupname}: no matching entries in group file"
                )
            gid_num = found[0].gid
        return Identity(match.uid, gid_num, (gid_num,))

    extra: list[int] = []
    if match.name:
        extra = [g.gid for g in _groups(root) or [] if match.name in g.members]
    return Identity(match.uid, match.gid, _with_primary(match.gid, extra))


def lookup_user(root: Path, name: str) -> tuple[int, int] | None:
    """uid and primary gid of the passwd entry named ``name`` in the rootfs, if any."""
    for entry in _passwd(root) or []:
        if entry.name == name:
            return entry.uid, entry.gid
    return None


def lookup_group(root: Path, name: str) -> int | None:
    """gid of the group named ``name`` in the rootfs, if any."""
    for entry in _groups(root) or []:
        if entry.name == name:
            return entry.gid
    return None
