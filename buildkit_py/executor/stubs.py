"""Mount-point stubs: empty files/dirs the runtime creates in the rootfs to mount over.

Before the run we note which mount targets (and which of their parents) are missing from the
rootfs; afterwards those paths are removed again if they are still empty, so they never show
up in the layer. The parent's timestamps are put back after each removal so the removal
itself does not touch them (reproducible layers). When the parent of the topmost stub ends
up with exactly the entries it had before the run, its pre-run timestamps are restored, so a
run that only needed a mount point leaves the parent untouched.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from buildkit_py import rootpath


@dataclass(frozen=True)
class _ParentState:
    path: str
    atime_ns: int
    mtime_ns: int
    names: frozenset[str]


class MountStubs:
    def __init__(self, root: Path, paths: list[str], parents: list[_ParentState]) -> None:
        self._root = root
        self._paths = paths  # container paths, deepest first
        self._parents = parents

    @classmethod
    def record(cls, root: Path, destinations: Iterable[str]) -> MountStubs:
        missing: list[str] = []
        seen: set[str] = set()
        for dest in destinations:
            path = rootpath.clean(dest)
            while path != "/" and path not in seen:
                if os.path.lexists(rootpath.resolve(root, path)):
                    break
                seen.add(path)
                missing.append(path)
                path = os.path.dirname(path)
        missing.sort(key=lambda p: p.count("/"), reverse=True)
        parents: list[_ParentState] = []
        for parent in sorted({os.path.dirname(p) for p in missing} - seen):
            host = rootpath.resolve(root, parent)
            try:
                st = os.stat(host)
                names = frozenset(os.listdir(host))
            except OSError:
                continue
            parents.append(_ParentState(parent, st.st_atime_ns, st.st_mtime_ns, names))
        return cls(root, missing, parents)

    @property
    def paths(self) -> list[str]:
        return list(self._paths)

    def cleanup(self) -> None:
        # Stubs are removed a parent at a time (deepest parents first, so a stub directory is
        # emptied before it is removed itself) and each parent's timestamps are put back
        # once: to the pre-run ones when its entries are as before the run, otherwise to
        # the ones it had just before its stubs were removed.
        groups: dict[str, list[str]] = {}
        for path in self._paths:
            groups.setdefault(os.path.dirname(path), []).append(path)
        pre_run = {state.path: state for state in self._parents}
        for parent in sorted(groups, key=lambda p: p.count("/"), reverse=True):
            host_parent = Path(rootpath.resolve(self._root, parent))
            try:
                pst = os.stat(host_parent)
            except OSError:
                continue
            removed = False
            for path in groups[parent]:
                removed |= _remove_if_empty(Path(rootpath.resolve(self._root, path)))
            state = pre_run.pop(parent, None)
            times = (pst.st_atime_ns, pst.st_mtime_ns)
            try:
                if state is not None and frozenset(os.listdir(host_parent)) == state.names:
                    times = (state.atime_ns, state.mtime_ns)
                elif not removed:
                    continue
                os.utime(host_parent, ns=times)
            except OSError:
                continue
        for state in pre_run.values():  # a recorded parent with no stub left to remove
            host = Path(rootpath.resolve(self._root, state.path))
            try:
                if frozenset(os.listdir(host)) == state.names:
                    os.utime(host, ns=(state.atime_ns, state.mtime_ns))
            except OSError:
                continue


def _remove_if_empty(host: Path) -> bool:
    """Remove a stub the run left as created (an empty dir or file); True if removed."""
    try:
        st = os.lstat(host)
    except OSError:
        return False
    try:
        if stat.S_ISDIR(st.st_mode):
            os.rmdir(host)  # refused (ENOTEMPTY) when the run put something in it
        elif st.st_size == 0:
            os.unlink(host)
        else:
            return False
    except OSError:
        return False
    return True
