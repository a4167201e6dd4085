"""Mount-point stubs: empty files/dirs the runtime creates in the rootfs to mount over.

Before the run we note which mount targets (and which of their parents) are missing from the
rootfs; afterwards those paths are removed again if they are still empty, so they never show
up in the layer. Like BuildKit's stub cleaner, the parent's timestamps are put back to what
they were just before the removal: the removal does not touch them, but the stub's creation
(during the run) does, so a parent such as /etc carries the run's time when it is in the
layer (directories whose only change is their mtime are not: the differ ignores dir times).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from buildkit_py import rootpath


class MountStubs:
    def __init__(self, root: Path, paths: list[str]) -> None:
        self._root = root
        self._paths = paths  # container paths, deepest first

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
        return cls(root, missing)

    @property
    def paths(self) -> list[str]:
        return list(self._paths)

    def cleanup(self) -> None:
        # Stubs are removed a parent at a time (deepest parents first, so a stub directory is
        # emptied before it is removed itself); each parent gets back the timestamps it had
        # just before its stubs were removed.
        groups: dict[str, list[str]] = {}
        for path in self._paths:
            groups.setdefault(os.path.dirname(path), []).append(path)
        for parent in sorted(groups, key=lambda p: p.count("/"), reverse=True):
            host_parent = Path(rootpath.resolve(self._root, parent))
            try:
                pst = os.stat(host_parent)
            except OSError:
                continue
            removed = False
            for path in groups[parent]:
                removed |= _remove_if_empty(Path(rootpath.resolve(self._root, path)))
            if removed:
                try:
                    os.utime(host_parent, ns=(pst.st_atime_ns, pst.st_mtime_ns))
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
