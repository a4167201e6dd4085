"""Resolve container paths inside a root directory without ever leaving it.

A leaf module (standard library and :mod:`buildkit_py.errors` only) shared by the
worker's file ops, the RUN executor and layer apply.

Symlinks met on the way are resolved by this code, never by the kernel, *as if the
root were /*: ``..`` is applied to the components resolved so far (physically, like
the kernel) and components that do not exist are appended lexically, so the result
can name a file about to be created. Two policies for a link or ``..`` that would
leave the root:

* clamped (default, what COPY/RUN need): an absolute target restarts at the root and
  ``..`` never climbs above it, so a hostile image cannot make a step touch the host;
* ``strict`` (layer apply): the path is refused with :class:`RootEscapeError`, so a
  crafted layer cannot rely on re-rooting (tar-slip, symlink escape).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Final

from buildkit_py.errors import BuildError

__all__ = [
    "MAX_SYMLINKS",
    "Probe",
    "RootEscapeError",
    "SymlinkLoopError",
    "clean",
    "clean_relative",
    "relative",
    "resolve",
    "walk",
]

# moby's FollowSymlinkInScope limit; generous next to the kernel's 40.
MAX_SYMLINKS: Final = 255

#: Called with a root-relative path (``a/b``, components already resolved); returns the
#: symlink's target if that entry is a symlink, else None (directory, file or missing).
Probe = Callable[[str], str | None]


class SymlinkLoopError(BuildError):
    """More than :data:`MAX_SYMLINKS` symlinks were followed for one path."""


class RootEscapeError(BuildError):
    """In strict mode, a path (or a symlink on it) leads outside the root."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path!r} {reason}")
        self.path = path
        self.reason = reason  # e.g. "goes through symlink /a -> /etc, which points outside ..."


def clean(path: str) -> str:
    """Lexically clean a container path to absolute form; ``..`` stops at ``/``
    (Go ``path.Clean("/" + path)``)."""
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


def clean_relative(name: str) -> str:
    """Lexically clean a root-relative name (a tar member); ``""`` means the root.

    Strict: an absolute name or one whose ``..`` climbs above the root raises
    :class:`RootEscapeError` instead of being clamped."""
    if name.startswith("/"):
        raise RootEscapeError(name, "has an absolute path")
    parts: list[str] = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise RootEscapeError(name, "escapes the root directory")
            parts.pop()
            continue
        parts.append(comp)
    return "/".join(parts)


def _readlink_probe(root: str) -> Probe:
    def probe(rel: str) -> str | None:
        try:
            return os.readlink(f"{root}/{rel}")
        except OSError:  # EINVAL: not a symlink; ENOENT/ENOTDIR: missing, appended as is
            return None

    return probe


def walk(path: str, probe: Probe, *, follow_final: bool = True, strict: bool = False) -> list[str]:
    """Resolve ``path`` (absolute or root-relative) to real, symlink-free components.

    ``probe`` reports symlinks (and may create or check entries on the way, as layer
    apply does). With ``follow_final=False`` a symlink in the last component is kept
    (for lstat, rm, or replacing the link). Raises :class:`SymlinkLoopError`, and in
    ``strict`` mode :class:`RootEscapeError`."""
    pending = [c for c in path.split("/") if c not in ("", ".")]
    pending.reverse()  # a stack: the next component is at the end
    done: list[str] = []
    links = 0
    last_link = ""
    while pending:
        comp = pending.pop()
        if comp == "..":
            if done:
                done.pop()
            elif strict:
                how = f"goes through symlink {last_link}, which" if last_link else ""
                raise RootEscapeError(path, f"{how} escapes the root".lstrip())
            continue
        rel = "/".join((*done, comp))
        if not pending and not follow_final:
            done.append(comp)
            break
        target = probe(rel)
        if target is None:
            done.append(comp)
            continue
        links += 1
        if links > MAX_SYMLINKS:
            raise SymlinkLoopError(f"too many levels of symbolic links resolving {path!r}")
        last_link = f"/{rel} -> {target}"
        if target.startswith("/"):
            if strict:
                raise RootEscapeError(
                    path, f"goes through symlink {last_link}, which points outside the root"
                )
            done = []
        pending.extend(reversed([c for c in target.split("/") if c not in ("", ".")]))
    return done


def resolve(
    root: str | os.PathLike[str], path: str, *, follow_final: bool = True, strict: bool = False
) -> str:
    """The host path of container ``path`` inside ``root``, symlinks resolved within it
    (see :func:`walk`)."""
    base = os.fspath(root).rstrip("/") or "/"
    done = walk(path, _readlink_probe(base), follow_final=follow_final, strict=strict)
    return os.path.join(base, *done) if done else base


def relative(root: str | os.PathLike[str], host_path: str | os.PathLike[str]) -> str:
    """The container path (``/a/b``) of a host path inside ``root``."""
    rel = os.path.relpath(host_path, root)
    return "/" if rel == "." else "/" + rel
