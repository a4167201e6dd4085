"""Change sets between filesystem trees, as ordered layer entries.

Two producers share one output shape (``LayerEntry`` lists in tar order: depth
first, each directory before its contents, the entries of a directory sorted by
name with deletions at their name's place, as BuildKit's differs walk):

- ``overlay_changes(upper, lowers)``: an overlay upper dir *is* the change set;
  whiteout devices become whiteout entries, an opaque directory is diffed against
  the lower one (a whiteout per entry gone, no opaque marker), and copied-up entries
  identical to the lower view (metadata-only false positives) are skipped.
  Directories are compared by mode and owner only, like BuildKit.
- ``diff(lower, upper)``: a double walk of two full trees (copy snapshotter,
  DiffOp), comparing type, mode, owner, size, mtime, link target and device.
"""

from __future__ import annotations

import enum
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from buildkit_py.snapshot.lowerview import LowerView, is_opaque, is_whiteout

CAPABILITY_XATTR = "security.capability"


class EntryKind(enum.Enum):
    PATH = "path"  # content from the source tree at ``path``
    WHITEOUT = "whiteout"  # ``path`` was deleted
    OPAQUE = "opaque"  # directory ``path`` hides all lower contents


class ChangeKind(enum.StrEnum):
    ADD = "add"
    MODIFY = "modify"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class LayerEntry:
    path: str  # relative, "/"-separated, no leading or trailing "/"
    kind: EntryKind = EntryKind.PATH
    change: ChangeKind = ChangeKind.ADD
    # The lstat the change walk already made, so the tar writer need not repeat it.
    st: os.stat_result | None = field(default=None, compare=False, repr=False)


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _xattr(path: str | os.PathLike[str], name: str) -> bytes | None:
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError:
        return None


def _same_meta(a: os.stat_result, b: os.stat_result) -> bool:
    return (
        a.st_mode == b.st_mode
        and a.st_uid == b.st_uid
        and a.st_gid == b.st_gid
        and a.st_mtime_ns == b.st_mtime_ns
    )


def _same_content(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            ca = fa.read(1 << 20)
            if ca != fb.read(1 << 20):
                return False
            if not ca:
                return True


def same_entry(
    a: str | os.PathLike[str], ast: os.stat_result, b: str | os.PathLike[str],
    bst: os.stat_result, *, check_content: bool,
) -> bool:
    """Whether two non-directory entries would produce the same tar entry."""
    if not _same_meta(ast, bst):
        return False
    mode = ast.st_mode
    if stat.S_ISREG(mode):
        if ast.st_size != bst.st_size:
            return False
        if _xattr(a, CAPABILITY_XATTR) != _xattr(b, CAPABILITY_XATTR):
            return False
        return not check_content or _same_content(a, b)
    if stat.S_ISLNK(mode):
        return os.readlink(a) == os.readlink(b)
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return ast.st_rdev == bst.st_rdev
    return True


def overlay_changes(upper: str | os.PathLike[str], lowers: Sequence[Path]) -> list[LayerEntry]:
    """Layer entries for an overlay upper dir over ``lowers`` (top first)."""
    view = LowerView(lowers)
    out: list[LayerEntry] = []
    _walk_upper(os.fspath(upper), "", view, False, out)
    return out


def _by_name(e: os.DirEntry[str]) -> str:
    return e.name


def _same_dir(a: os.stat_result, b: os.stat_result) -> bool:
    """BuildKit's differs compare a directory's mode and owner, never its times: a
    directory whose only change is its mtime is not part of the layer."""
    return a.st_mode == b.st_mode and a.st_uid == b.st_uid and a.st_gid == b.st_gid


def _walk_upper(
    real: str, rel: str, view: LowerView, hidden: bool, out: list[LayerEntry]
) -> None:
    """Entries of upper dir ``real`` in name order (whiteouts at their name's place, as
    BuildKit's overlay differ walks). ``hidden``: nothing below exists (all adds)."""
    with os.scandir(real) as it:
        entries = sorted(it, key=_by_name)
    for e in entries:
        child = f"{rel}/{e.name}" if rel else e.name
        st = e.stat(follow_symlinks=False)
        mode = st.st_mode
        if is_whiteout(st):
            # a whiteout of something no lower layer has deletes nothing: left out
            if not hidden and view.lookup(child) is not None:
                out.append(LayerEntry(child, EntryKind.WHITEOUT, ChangeKind.DELETE))
            continue
        lower = None if hidden else view.lookup(child)
        change = ChangeKind.ADD if lower is None else ChangeKind.MODIFY
        if stat.S_ISDIR(mode):
            sub: list[LayerEntry] = []
            lower_dir = lower is not None and stat.S_ISDIR(lower[1].st_mode)
            if lower_dir and is_opaque(e.path):
                # BuildKit lists what an opaque dir changes as a diff against the lower
                # dir (a whiteout per entry gone), never as an opaque marker
                _walk_opaque(e.path, child, view, sub)
            else:
                _walk_upper(e.path, child, view, hidden or lower is None, sub)
            if sub or lower is None or not lower_dir or not _same_dir(st, lower[1]):
                out.append(LayerEntry(child, EntryKind.PATH, change, st))
                out.extend(sub)
        elif stat.S_ISSOCK(mode):
            continue
        elif lower is None or not same_entry(e.path, st, lower[0], lower[1],
                                             check_content=True):
            out.append(LayerEntry(child, EntryKind.PATH, change, st))


def _walk_opaque(real: str, rel: str, view: LowerView, out: list[LayerEntry]) -> None:
    """Entries turning merged lower dir ``rel`` into upper dir ``real`` (a double walk,
    as continuity's differ does for an opaque directory)."""
    upper: dict[str, tuple[os.DirEntry[str], os.stat_result]] = {}
    with os.scandir(real) as it:
        for e in it:
            st = e.stat(follow_symlinks=False)
            if not is_whiteout(st):
                upper[e.name] = (e, st)
    lower_names = set(view.listdir(rel))
    for name in sorted(lower_names | upper.keys()):
        child = f"{rel}/{name}" if rel else name
        found = upper.get(name)
        if found is None:
            out.append(LayerEntry(child, EntryKind.WHITEOUT, ChangeKind.DELETE))
            continue
        e, st = found
        lower = view.lookup(child) if name in lower_names else None
        change = ChangeKind.ADD if lower is None else ChangeKind.MODIFY
        if stat.S_ISDIR(st.st_mode):
            sub: list[LayerEntry] = []
            same = False
            if lower is not None and stat.S_ISDIR(lower[1].st_mode):
                _walk_opaque(e.path, child, view, sub)
                same = _same_dir(st, lower[1])
            else:
                _walk_upper(e.path, child, view, True, sub)
            if sub or not same:
                out.append(LayerEntry(child, EntryKind.PATH, change, st))
                out.extend(sub)
        elif stat.S_ISSOCK(st.st_mode):
            continue
        elif lower is None or not same_entry(e.path, st, lower[0], lower[1],
                                             check_content=True):
            out.append(LayerEntry(child, EntryKind.PATH, change, st))


def diff(lower: str | os.PathLike[str] | None, upper: str | os.PathLike[str]) -> list[LayerEntry]:
    """Layer entries turning tree ``lower`` (None = empty) into tree ``upper``."""
    out: list[LayerEntry] = []
    _walk_pair(os.fspath(lower) if lower is not None else None, os.fspath(upper), "", out)
    return out


def _walk_pair(lower: str | None, upper: str, rel: str, out: list[LayerEntry]) -> None:
    with os.scandir(upper) as it:
        uentries = {e.name: e for e in it}
    lnames: set[str] = set()
    if lower is not None:
        with os.scandir(lower) as it:
            lnames = {e.name for e in it}
    # one pass in name order, deletions at their name's place (continuity's double walk)
    for name in sorted(lnames | uentries.keys()):
        child = _join(rel, name)
        e = uentries.get(name)
        if e is None:
            out.append(LayerEntry(child, EntryKind.WHITEOUT, ChangeKind.DELETE))
            continue
        st = e.stat(follow_symlinks=False)
        lpath = f"{lower}/{name}" if lower is not None and name in lnames else None
        lst = os.lstat(lpath) if lpath is not None else None
        change = ChangeKind.ADD if lst is None else ChangeKind.MODIFY
        if stat.S_ISDIR(st.st_mode):
            ldir = lpath if lst is not None and stat.S_ISDIR(lst.st_mode) else None
            sub: list[LayerEntry] = []
            _walk_pair(ldir, e.path, child, sub)
            if sub or ldir is None or lst is None or not _same_dir(st, lst):
                out.append(LayerEntry(child, EntryKind.PATH, change, st))
                out.extend(sub)
        elif stat.S_ISSOCK(st.st_mode):
            continue
        elif (
            lst is None
            or lpath is None
            or not same_entry(e.path, st, lpath, lst, check_content=False)
        ):
            out.append(LayerEntry(child, EntryKind.PATH, change, st))
