"""Resolve paths inside a root directory without ever leaving it.

Symlinks met on the way are followed *as if the root were /*: an absolute link
target restarts at the root, and ``..`` never climbs above it. This is how a
builder must treat a container filesystem it manipulates from the host side,
otherwise a hostile image could make a COPY write to the host.
"""

from __future__ import annotations

import os
import stat

from buildkit_py.errors import BuildError

_MAX_LINKS = 255


def clean(path: str) -> str:
    """Lexically clean an absolute path (Go ``path.Clean`` of ``/`` + path)."""
    parts: list[str] = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if parts:
                parts.pop()
            continue
        parts.append(comp)
    return "/" + "/".join(parts)


def resolve(root: str, path: str, *, follow_final: bool = True) -> str:
    """Return the host path of ``path`` inside ``root``, following symlinks within it.

    Components that do not exist are appended lexically, so the result can name a
    file about to be created. With ``follow_final=False`` a symlink in the last
    component is returned itself (for lstat, rm, or replacing the link).
    """
    root = root.rstrip("/") or "/"
    pending = [c for c in path.split("/") if c not in ("", ".")]
    pending.reverse()
    done: list[str] = []
    links = 0
    while pending:
        comp = pending.pop()
        if comp == "..":
            if done:
                done.pop()
            continue
        candidate = os.path.join(root, *done, comp)
        is_last = not pending
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            done.append(comp)
            continue
        if stat.S_ISLNK(st.st_mode) and (follow_final or not is_last):
            links += 1
            if links > _MAX_LINKS:
                raise BuildError(f"too many levels of symbolic links resolving {path!r}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            parts = [c for c in target.split("/") if c not in ("", ".")]
            pending.extend(reversed(parts))
            continue
        done.append(comp)
    return os.path.join(root, *done) if done else root


def relative(root: str, host_path: str) -> str:
    """The container path (``/a/b``) of a host path inside ``root``."""
    rel = os.path.relpath(host_path, root)
    return "/" if rel == "." else "/" + rel
