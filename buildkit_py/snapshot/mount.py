"""Mount descriptions and the code that performs them.

Snapshotters return ``Mount`` lists with absolute paths (usable by any consumer);
``mount_all`` performs them. An overlay option string longer than the kernel's
page-size limit (deep layer chains) is shortened by making every layer path
relative to their common directory and mounting from a helper thread that has
its own working directory (``unshare(CLONE_FS)``), so the process-wide cwd of
other threads is never touched.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from buildkit_py.snapshot.errors import MountError

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MNT_DETACH = 0x2
CLONE_FS = 0x200

_FLAG_OPTIONS = {
    "ro": MS_RDONLY,
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
}
_IGNORED_OPTIONS = {"rw", "bind", "rbind", "suid", "dev", "exec"}
_PATH_OPTIONS = ("lowerdir", "upperdir", "workdir")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Mount:
    """One mount: ``type`` (``overlay``, ``bind``, ...), ``source``, ``options``."""

    type: str
    source: str
    options: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple(self.options))

    @property
    def readonly(self) -> bool:
        return "ro" in self.options

    def option(self, name: str) -> str | None:
        """Value of a ``name=value`` option, or None."""
        prefix = name + "="
        for opt in self.options:
            if opt.startswith(prefix):
                return opt[len(prefix) :]
        return None


_libc: ctypes.CDLL | None = None


def _c() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        lib = ctypes.CDLL("libc.so.6", use_errno=True)
        lib.mount.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_char_p,
        ]
        lib.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        lib.unshare.argtypes = [ctypes.c_int]
        _libc = lib
    return _libc


def _sys_mount(source: str | None, target: str, fstype: str | None, flags: int,
               data: str | None) -> None:
    rc = _c().mount(
        os.fsencode(source) if source is not None else None,
        os.fsencode(target),
        fstype.encode() if fstype is not None else None,
        flags,
        os.fsencode(data) if data is not None else None,
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise MountError(
            f"mount {fstype or 'bind'} {source!r} on {target}: {os.strerror(err)}"
            + (f" (options {data[:200]!r})" if data else ""),
            hint="overlay mounts need root and a filesystem that supports overlayfs; "
            "set BKPY_SNAPSHOTTER=native to use the copying snapshotter",
        )


def _split_flags(options: Sequence[str]) -> tuple[int, list[str]]:
    flags = 0
    data: list[str] = []
    for opt in options:
        if opt in _FLAG_OPTIONS:
            flags |= _FLAG_OPTIONS[opt]
        elif opt in _IGNORED_OPTIONS:
            continue
        else:
            data.append(opt)
    return flags, data


def _compact_overlay(data: list[str]) -> tuple[str, list[str]]:
    """Rewrite layer paths relative to their common parent; returns (cwd, options)."""
    paths: list[str] = []
    for opt in data:
        key, _, value = opt.partition("=")
        if key in _PATH_OPTIONS:
            paths.extend(value.split(":"))
    if not paths or not all(os.path.isabs(p) for p in paths):
        return "", data
    common = os.path.commonpath(paths)
    out: list[str] = []
    for opt in data:
        key, _, value = opt.partition("=")
        if key in _PATH_OPTIONS:
            rel = [os.path.relpath(p, common) for p in value.split(":")]
            out.append(f"{key}={':'.join(rel)}")
        else:
            out.append(opt)
    return common, out


def _run_in_private_cwd(cwd: str, fn: Callable[[], None]) -> None:
    """Run ``fn()`` on a fresh thread whose cwd is private to it."""
    failure: list[BaseException] = []

    def body() -> None:
        try:
            if _c().unshare(CLONE_FS) != 0:
                err = ctypes.get_errno()
                raise MountError(f"unshare(CLONE_FS): {os.strerror(err)}")
            os.chdir(cwd)
            fn()
        except BaseException as e:  # re-raised on the calling thread
            failure.append(e)

    t = threading.Thread(target=body, name="bkpy-mount")
    t.start()
    t.join()
    if failure:
        raise failure[0]


def _mount_one(m: Mount, target: str) -> None:
    flags, data = _split_flags(m.options)
    if m.type == "bind":
        bind_flags = MS_BIND | (MS_REC if "rbind" in m.options else 0)
        _sys_mount(m.source, target, None, bind_flags, None)
        if flags:
            # Bind mounts ignore ro/nosuid on the first call; a remount applies them.
            try:
                _sys_mount(None, target, None, MS_BIND | MS_REMOUNT | bind_flags | flags, None)
            except MountError:
                unmount(target)
                raise
        return
    joined = ",".join(data)
    if m.type == "overlay" and len(joined) >= PAGE_SIZE:
        cwd, data = _compact_overlay(data)
        joined = ",".join(data)
        if len(joined) >= PAGE_SIZE:
            raise MountError(
                f"overlay options too long ({len(joined)} bytes) even with relative paths"
            )
        abs_target = os.path.abspath(target)
        _run_in_private_cwd(
            cwd, lambda: _sys_mount(m.source, abs_target, m.type, flags, joined)
        )
        return
    _sys_mount(m.source, target, m.type, flags, joined or None)


def mount_all(mounts: Sequence[Mount], target: str | os.PathLike[str]) -> None:
    """Mount each of ``mounts`` on ``target``, in order; undo all on failure."""
    t = os.fspath(target)
    done = 0
    try:
        for m in mounts:
            _mount_one(m, t)
            done += 1
    except BaseException:
        for _ in range(done):
            unmount(t)
        raise


def unmount(target: str | os.PathLike[str]) -> None:
    """Unmount ``target``; falls back to a lazy detach when it is busy."""
    t = os.fsencode(os.fspath(target))
    if _c().umount2(t, 0) == 0:
        return
    err = ctypes.get_errno()
    if err == errno.EBUSY and _c().umount2(t, MNT_DETACH) == 0:
        return
    raise MountError(f"unmount {os.fsdecode(t)}: {os.strerror(err)}")


class MountPoints:
    """Empty directories under ``parent`` to mount on, reused: creating and removing one for
    every mount costs two metadata writes on the snapshot filesystem's journal."""

    _KEEP = 8

    def __init__(self, parent: str | os.PathLike[str]) -> None:
        self.parent = os.fspath(parent)
        self._free: list[str] = []
        self._lock = threading.Lock()

    def take(self) -> str:
        with self._lock:
            if self._free:
                return self._free.pop()
        return tempfile.mkdtemp(prefix="bkpy-mnt-", dir=self.parent)

    def close(self) -> None:
        """Remove the directories kept for reuse (they would pile up, one set a process)."""
        with self._lock:
            free, self._free = self._free, []
        for path in free:
            with contextlib.suppress(OSError):
                os.rmdir(path)

    def give(self, path: str) -> None:
        """Return an unmounted, empty ``path``; kept for reuse or removed."""
        with self._lock:
            if len(self._free) < self._KEEP:
                self._free.append(path)
                return
        os.rmdir(path)


@contextlib.contextmanager
def mounted(
    mounts: Sequence[Mount], parent: str | os.PathLike[str] | MountPoints | None = None
) -> Iterator[Path]:
    """Mount on a fresh temporary directory (or one from a :class:`MountPoints`); unmount
    on exit, and remove the directory or give it back."""
    if isinstance(parent, MountPoints):
        points: MountPoints | None = parent
        target = parent.take()
    else:
        points = None
        target = tempfile.mkdtemp(prefix="bkpy-mnt-", dir=parent)
    clean = False
    try:
        mount_all(mounts, target)
        try:
            yield Path(target)
        finally:
            for _ in mounts:
                unmount(target)
        clean = True
    finally:
        if points is not None and clean:
            points.give(target)
        else:
            os.rmdir(target)
