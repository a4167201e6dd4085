"""Resolve a container path inside a rootfs directory without escaping it.

Symlinks in an image are interpreted relative to the image root: an absolute link target
restarts at the rootfs, and ``..`` never climbs above it. Paths that do not (fully) exist
are resolved as far as they exist and the rest is appended verbatim.
"""

from __future__ import annotations

import os
from pathlib import Path

from buildkit_py.errors import BuildError

_MAX_SYMLINKS = 255


def clean_path(path: str) -> str:
    """Normalise a container path to an absolute form without ``.``/``..`` or doubled slashes."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def resolve_in_root(root: Path, path: str) -> Path:
    """Return the host path for container ``path`` with every symlink resolved inside ``root``."""
    pending = [p for p in path.split("/") if p not in ("", ".")]
    pending.reverse()  # a stack: the next component is at the end
    resolved: list[str] = []
    followed = 0
    while pending:
        part = pending.pop()
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            target = os.readlink(candidate)
        except OSError:
            # Not a symlink (or missing): keep it as is.
            resolved.append(part)
            continue
        followed += 1
        if followed > _MAX_SYMLINKS:
            raise BuildError(f"too many levels of symbolic links resolving {path!r} in the rootfs")
        if target.startswith("/"):
            resolved = []
        extra = [p for p in target.split("/") if p not in ("", ".")]
        pending.extend(reversed(extra))
    return root.joinpath(*resolved) if resolved else root
