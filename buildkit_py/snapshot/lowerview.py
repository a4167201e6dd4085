"""Read-only lookups in the merged view of a stack of overlay layer directories.

Layers are given top first. Like the kernel, a lookup walks the layers for each
path component: a whiteout (char device 0:0) or a non-directory hides everything
below it, and an opaque directory hides the same directory in lower layers.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path

OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str | os.PathLike[str]) -> bool:
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError as e:
            if e.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
    return False


def split_rel(rel: str) -> tuple[str, str]:
    parent, _, name = rel.rpartition("/")
    return parent, name


class LowerView:
    """Lookups in the union of ``layers`` (top first); results are cached."""

    def __init__(self, layers: Sequence[Path]) -> None:
        self.layers = [Path(p) for p in layers]
        self._dirs: dict[str, list[Path]] = {}

    def dirs(self, rel: str) -> list[Path]:
        """Real directories that make up merged directory ``rel`` (top first);
        empty when ``rel`` is not a directory in the merged view."""
        cached = self._dirs.get(rel)
        if cached is not None:
            return cached
        result: list[Path] = []
        if rel == "":
            for layer in self.layers:
                result.append(layer)
                if is_opaque(layer):
                    break
        else:
            parent, name = split_rel(rel)
            for d in self.dirs(parent):
                p = d / name
                try:
                    st = os.lstat(p)
                except FileNotFoundError:
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    break
                result.append(p)
                if is_opaque(p):
                    break
        self._dirs[rel] = result
        return result

    def lookup(self, rel: str) -> tuple[Path, os.stat_result] | None:
        """The real path and stat of merged entry ``rel``, or None if absent."""
        if rel == "":
            return (self.layers[0], os.lstat(self.layers[0])) if self.layers else None
        parent, name = split_rel(rel)
        for d in self.dirs(parent):
            p = d / name
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            return None if is_whiteout(st) else (p, st)
        return None

    def listdir(self, rel: str) -> list[str]:
        """Names in merged directory ``rel`` (whiteouts applied)."""
        seen: set[str] = set()
        hidden: set[str] = set()
        for d in self.dirs(rel):
            with os.scandir(d) as it:
                for e in it:
                    if e.name in seen or e.name in hidden:
                        continue
                    st = e.stat(follow_symlinks=False)
                    if is_whiteout(st):
                        hidden.add(e.name)
                    else:
                        seen.add(e.name)
        return sorted(seen)

    def invalidate(self) -> None:
        self._dirs.clear()
