"""Resolving container paths inside the rootfs as if chrooted (runc's securejoin rules).

Symlinks are followed with the rootfs as ``/`` and ``..`` never climbs above it, so a
target can't escape; a result that still resolves outside (a race) is refused.
"""

from __future__ import annotations

import os
import stat

from .errors import RuntimeFailure


def resolve(root: str, path: str) -> str:
    """Host path of container ``path`` with every existing symlink resolved inside ``root``."""
    todo = [p for p in reversed(path.split("/")) if p and p != "."]
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop()
        if part == "..":
            if done:
                done.pop()
            continue
        host = root + "/" + "/".join([*done, part])
        try:
            mode = os.lstat(host).st_mode
        except (FileNotFoundError, NotADirectoryError):
            done.append(part)
            continue
        if not stat.S_ISLNK(mode):
            done.append(part)
            continue
        links += 1
        if links > 255:
            raise RuntimeFailure(f"resolve {path}", "too many levels of symbolic links")
        target = os.readlink(host)
        if target.startswith("/"):
            done = []
        todo.extend(p for p in reversed(target.split("/")) if p and p != ".")
    return root + "/" + "/".join(done) if done else root


def check_inside(root: str, host: str, what: str) -> None:
    real = os.path.realpath(host)
    if real != root and not real.startswith(root.rstrip("/") + "/"):
        raise RuntimeFailure(what, f"target {real} is outside the rootfs")


def makedirs(host: str, mode: int = 0o755) -> None:
    """``mkdir -p`` giving every created level ``mode`` (as runc's MkdirAll): os.makedirs
    gives the intermediate ones 0777 less the umask, and the init runs with umask 0."""
    parent = os.path.dirname(host)
    if parent != host and not os.path.lexists(parent):
        makedirs(parent, mode)
    try:
        os.mkdir(host, mode)
    except FileExistsError:
        if not os.path.isdir(host):
            raise


def ensure_dir(root: str, path: str, what: str) -> str:
    host = resolve(root, path)
    try:
        makedirs(host)
    except OSError as e:
        raise RuntimeFailure(what, e) from None
    check_inside(root, host, what)
    return host


def ensure_file(root: str, path: str, what: str) -> str:
    host = resolve(root, path)
    try:
        makedirs(os.path.dirname(host))
        if not os.path.lexists(host):
            os.close(os.open(host, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o755))
    except OSError as e:
        raise RuntimeFailure(what, e) from None
    check_inside(root, host, what)
    return host
