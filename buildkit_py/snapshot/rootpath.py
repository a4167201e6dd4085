"""Resolve layer paths inside a root directory without ever leaving it.

Every parent component is looked up with ``lstat``; a symlink is followed by
this code (never by the kernel) and only if its target stays inside the root.
A symlink whose target is absolute or climbs above the root makes the entry
unsafe: the layer is refused rather than re-rooted, so a crafted tar cannot
write through it. In overlay-upper mode the lookup sees the merged view (upper
over lower layers) and creates missing parents in the upper dir, copying their
attributes from the lower layer (as a kernel copy-up would).
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path

from buildkit_py.snapshot.errors import LayerError, UnsafeLayerError
from buildkit_py.snapshot.lowerview import (
    OPAQUE_XATTRS,
    LowerView,
    is_opaque,
    is_whiteout,
    split_rel,
)

_MAX_SYMLINKS = 40


def clean_member_path(name: str) -> str:
    """Normalise a tar member name to a root-relative path; '' means the root.

    Raises UnsafeLayerError for absolute names and names escaping via '..'."""
    if name.startswith("/"):
        raise UnsafeLayerError(f"layer entry {name!r} has an absolute path")
    cleaned = posixpath.normpath(name)
    if cleaned == ".":
        return ""
    if cleaned == ".." or cleaned.startswith("../"):
        raise UnsafeLayerError(f"layer entry {name!r} escapes the root directory")
    return cleaned


class RootResolver:
    """Maps root-relative paths of parent directories to real directories."""

    def __init__(self, root: Path, view: LowerView | None = None) -> None:
        self.root = root
        self.view = view  # set in overlay-upper mode
        self._cache: dict[str, Path] = {"": root}

    def invalidate(self) -> None:
        self._cache = {"": self.root}

    def resolve_dir(self, rel: str, *, create: bool, entry: str) -> Path | None:
        """Real directory for root-relative ``rel`` (following in-root symlinks).

        With ``create``, missing components become directories (in overlay-upper
        mode: copies of the lower directory's attributes); otherwise a component
        missing from the root gives None."""
        hit = self._cache.get(rel)
        if hit is not None:
            return hit
        pending = rel.split("/")
        done: list[str] = []  # real, symlink-free components resolved so far
        hops = 0
        while pending:
            comp = pending.pop(0)
            cur = "/".join(done)
            child = f"{cur}/{comp}" if cur else comp
            real = self.root / child
            kind, target = self._lookup(child, real)
            if kind == "dir":
                done.append(comp)
                continue
            if kind == "symlink":
                hops += 1
                if hops > _MAX_SYMLINKS:
                    raise UnsafeLayerError(f"layer entry {entry!r}: too many symlink levels")
                assert target is not None
                if target.startswith("/"):
                    raise UnsafeLayerError(
                        f"layer entry {entry!r} goes through symlink /{child} -> {target}, "
                        "which points outside the root"
                    )
                joined = posixpath.normpath(posixpath.join(cur, target))
                if joined == ".." or joined.startswith("../"):
                    raise UnsafeLayerError(
                        f"layer entry {entry!r} goes through symlink /{child} -> {target}, "
                        "which escapes the root"
                    )
                done = []
                if joined != ".":
                    pending = joined.split("/") + pending
                continue
            if kind in ("missing", "lowerdir"):
                if not create:
                    return None
                self._make_dir(child, real)
                done.append(comp)
                continue
            raise LayerError(f"layer entry {entry!r}: /{child} exists and is not a directory")
        result = self.root.joinpath(*done) if done else self.root
        self._cache[rel] = result
        return result

    def _lookup(self, child: str, real: Path) -> tuple[str, str | None]:
        try:
            st = os.lstat(real)
        except FileNotFoundError:
            st = None
        if st is not None:
            if is_whiteout(st) and self.view is not None:
                return "missing", None
            return self._classify(real, st)
        if self.view is None or self._hidden_in_upper(child):
            return "missing", None
        found = self.view.lookup(child)
        if found is None:
            return "missing", None
        kind, target = self._classify(found[0], found[1])
        # A lower-only directory must be copied up before anything is written in it.
        return ("lowerdir", None) if kind == "dir" else (kind, target)

    @staticmethod
    def _classify(path: Path, st: os.stat_result) -> tuple[str, str | None]:
        if stat.S_ISDIR(st.st_mode):
            return "dir", None
        if stat.S_ISLNK(st.st_mode):
            return "symlink", os.readlink(path)
        return "other", None

    def _hidden_in_upper(self, child: str) -> bool:
        """Whether an opaque dir in the upper hides the lower entries of ``child``."""
        parent = child
        while parent:
            parent = split_rel(parent)[0]
            p = self.root / parent if parent else self.root
            if p.is_dir() and is_opaque(p):
                return True
        return False

    def _make_dir(self, child: str, real: Path) -> None:
        try:
            st = os.lstat(real)
            if is_whiteout(st):
                # Re-creating a deleted lower dir in the upper: hide its old contents.
                os.unlink(real)
                os.mkdir(real, 0o755)
                os.setxattr(real, OPAQUE_XATTRS[0], b"y")
                return
        except FileNotFoundError:
            pass
        lower = None
        if self.view is not None and not self._hidden_in_upper(child):
            lower = self.view.lookup(child)
        os.mkdir(real, 0o755)
        if lower is not None and stat.S_ISDIR(lower[1].st_mode):
            lst = lower[1]
            os.chown(real, lst.st_uid, lst.st_gid)
            os.chmod(real, stat.S_IMODE(lst.st_mode))
            os.utime(real, ns=(lst.st_atime_ns, lst.st_mtime_ns))
