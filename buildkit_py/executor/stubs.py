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
        for path in self._paths:
            host = Path(rootpath.resolve(self._root, path))
            try:
                st = os.lstat(host)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                try:
                    with os.scandir(host) as entries:
                        if any(entries):
                            continue
                except OSError:
                    continue
            elif st.st_size != 0:
                continue
            try:
                pst = os.stat(host.parent)
            except OSError:
                continue
            try:
                if stat.S_ISDIR(st.st_mode):
                    os.rmdir(host)
                else:
                    os.unlink(host)
                os.utime(host.parent, ns=(pst.st_atime_ns, pst.st_mtime_ns))
            except OSError:
                continue
        for state in self._parents:
            host = Path(rootpath.resolve(self._root, state.path))
            try:
                if frozenset(os.listdir(host)) == state.names:
                    os.utime(host, ns=(state.atime_ns, state.mtime_ns))
            except OSError:
                continue
