"""Persistent ``RUN --mount=type=cache`` directories and their sharing modes.

Layout: ``<root>/<key>/<n>`` holds instance ``n`` of the cache with id ``id`` (``key`` is a
readable, collision-free form of the id); ``<n>.lock`` is its lock file. ``shared`` users take
a shared flock on instance 0, ``locked`` users an exclusive one (so they wait for each other),
``private`` users the first instance nobody holds, creating a new one when all are busy.
flock works between threads (each acquire opens its own file description) and between
processes, so a daemon and an embedded builder on one state dir agree.

Each instance is one ``exec.cachemount`` record of ``du``/``prune``/GC, as in BuildKit:
``<n>.json`` keeps its record id, creation and last use, use count and description. An
instance is in use while anyone holds its lock; :meth:`CacheMountManager.remove` takes
the lock exclusively without waiting, so a cache a build has mounted is never removed.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildkit_py.errors import BuildError
from buildkit_py.executor.errors import ExecCancelledError

SHARING_MODES = ("shared", "private", "locked")
DIR_NAME = "cache-mounts"  # under the executor's state directory
_POLL = 0.05


def cache_key(cache_id: str) -> str:
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", cache_id).strip("_.")[:48] or "cache"
    digest = hashlib.sha256(cache_id.encode()).hexdigest()[:16]
    return f"{readable}-{digest}"


@dataclass(frozen=True)
class CacheMountRecord:
    """One instance of a cache mount as a cache record (``exec.cachemount``)."""

    id: str
    cache_id: str
    path: Path
    size: int
    created: float
    last_used: float
    usage_count: int
    description: str
    in_use: bool


def _new_record_id() -> str:
    # BuildKit's record ids: 25 base-36 characters
    n, out = uuid.uuid4().int, ""
    for _ in range(25):
        n, d = divmod(n, 36)
        out += "0123456789abcdefghijklmnopqrstuvwxyz"[d]
    return out


def disk_size(path: Path) -> int:
    """Bytes the tree takes on disk (allocated blocks, hard links once), as ``du``: the
    top directory included, as containerd sizes BuildKit's cache mounts (unlike
    :func:`buildkit_py.snapshot.base.disk_usage`, which snapshot sizes keep without it)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for top, dirs, files in os.walk(path):
        for name in [top, *(os.path.join(top, f) for f in (*dirs, *files))]:
            try:
                st = os.lstat(name)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


@dataclass
class CacheLease:
    """An acquired cache instance; ``release()`` drops the lock."""

    path: Path
    _fd: int

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the description drops the flock
            self._fd = -1


class CacheMountManager:
    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def under(cls, state_dir: Path) -> CacheMountManager:
        """The cache mounts of the executor whose state directory is ``state_dir``."""
        return cls(state_dir / DIR_NAME)

    def has(self, cache_id: str) -> bool:
        """Whether the cache exists (its first instance was ever created)."""
        return (self.root / cache_key(cache_id) / "0").is_dir()

    def read_existing(self, cache_id: str) -> CacheLease | None:
        """A shared lease on the cache's first instance (what ``shared`` users see), or
        None when the cache was never created: reading never creates one."""
        if not self.has(cache_id):
            return None
        return self.acquire(cache_id, sharing="shared")

    def fill_new(self, cache_id: str, fill: Callable[[Path], None]) -> bool:
        """Create the cache's first instance with ``fill(dir)`` (e.g. imported content)
        unless it exists; False when it did (a local cache is never overwritten)."""
        base = self.root / cache_key(cache_id)
        if (base / "0").is_dir():
            return False
        base.mkdir(parents=True, exist_ok=True)
        self._write_meta(base, cache_id)

        def make(tmp: Path) -> None:
            tmp.mkdir()
            fill(tmp)

        return _create_once(base, 0, make)

    def acquire(
        self,
        cache_id: str,
        *,
        sharing: str = "shared",
        seed: Path | None = None,
        uid: int = 0,
        gid: int = 0,
        mode: int = 0o755,
        cancel: threading.Event | None = None,
        description: str = "",
    ) -> CacheLease:
        """Lock an instance of the cache (see the module's docstring) and count the use;
        ``description`` names the record (BuildKit: the mount and the exec using it)."""
        if sharing not in SHARING_MODES:
            raise BuildError(f"invalid cache mount sharing mode {sharing!r}")
        base = self.root / cache_key(cache_id)
        base.mkdir(parents=True, exist_ok=True)
        self._write_meta(base, cache_id)
        if sharing == "private":
            index = 0
            while True:
                fd = _open_lock(base / f"{index}.lock")
                if _try_flock(fd, fcntl.LOCK_EX):
                    break
                os.close(fd)
                index += 1
        else:
            fd = _open_lock(base / "0.lock")
            op = fcntl.LOCK_SH if sharing == "shared" else fcntl.LOCK_EX
            index = 0
            while not _try_flock(fd, op):
                if cancel is not None and cancel.wait(_POLL):
                    os.close(fd)
                    raise ExecCancelledError(
                        f"cancelled while waiting for locked cache mount {cache_id!r}"
                    )
                if cancel is None:
                    time.sleep(_POLL)
        try:
            path = self._ensure_instance(base, index, seed, uid, gid, mode)
            _touch(base, index, description or f'cache mount with id "{cache_id}"')
        except BaseException:
            os.close(fd)
            raise
        return CacheLease(path, fd)

    def _instances(self) -> Iterator[tuple[Path, str, int]]:
        """(cache directory, cache id, instance number) of every existing instance."""
        try:
            bases = sorted(p for p in self.root.iterdir() if p.is_dir())
        except FileNotFoundError:
            return
        for base in bases:
            try:
                cache_id = json.loads((base / "meta.json").read_text())["id"]
            except (OSError, ValueError, KeyError):
                continue
            for child in sorted(base.iterdir()):
                if child.name.isdigit() and child.is_dir():
                    yield base, cache_id, int(child.name)

    def records(self) -> list[CacheMountRecord]:
        """Every instance as a cache record, sized on disk."""
        out: list[CacheMountRecord] = []
        if not self.root.is_dir():
            return out  # no cache was ever mounted
        locked = _locked_files(self.root)
        for base in self.root.iterdir():  # left by removals that were interrupted
            for trash in base.glob(".del-*"):
                shutil.rmtree(trash, ignore_errors=True)
        for base, cache_id, index in self._instances():
            meta = _touch(base, index, f'cache mount with id "{cache_id}"', use=False)
            if meta is None:
                continue  # removed meanwhile
            path = base / str(index)
            out.append(CacheMountRecord(
                meta["id"], cache_id, path, disk_size(path), meta["created"],
                meta["last_used"], meta["usage_count"], meta["description"],
                _held(base / f"{index}.lock", locked)))
        return out

    def remove(self, record_id: str) -> bool:
        """Delete the instance that is record ``record_id`` unless a build holds it (or it
        is gone): whether it was removed. A build waiting for it gets a new, empty one."""
        for base, _, index in self._instances():
            try:
                if json.loads((base / f"{index}.json").read_text()).get("id") != record_id:
                    continue
            except (OSError, ValueError):
                continue
            fd = _open_lock(base / f"{index}.lock")
            try:
                if not _try_flock(fd, fcntl.LOCK_EX):
                    return False
                trash = base / f".del-{uuid.uuid4().hex}"
                try:
                    os.rename(base / str(index), trash)
                except FileNotFoundError:
                    return False
                (base / f"{index}.json").unlink(missing_ok=True)
                shutil.rmtree(trash, ignore_errors=True)
                return True
            finally:
                os.close(fd)
        return False

    @staticmethod
    def _write_meta(base: Path, cache_id: str) -> None:
        meta = base / "meta.json"
        if not meta.exists():
            tmp = base / f".meta.{uuid.uuid4().hex}"
            tmp.write_text(json.dumps({"id": cache_id, "type": "exec.cachemount"}))
            os.replace(tmp, meta)

    @staticmethod
    def _ensure_instance(
        base: Path, index: int, seed: Path | None, uid: int, gid: int, mode: int
    ) -> Path:
        def make(tmp: Path) -> None:
            if seed is not None:
                # The seed's own root owner and mode are the cache's (BuildKit's cache is a
                # layer on the seed): `RUN --mount=type=cache,uid=...` sets them there.
                _copy_tree(seed, tmp)
            else:
                tmp.mkdir()
                os.chown(tmp, uid, gid)
                os.chmod(tmp, mode)

        _create_once(base, index, make)
        return base / str(index)


def _create_once(base: Path, index: int, make: Callable[[Path], None]) -> bool:
    """Make instance ``index`` with ``make(tmp)`` and an atomic rename unless it exists
    (checked again under the create lock, so concurrent creators make it once)."""
    path = base / str(index)
    if path.is_dir():
        return False
    create_fd = _open_lock(base / "create.lock")
    try:
        fcntl.flock(create_fd, fcntl.LOCK_EX)
        if path.is_dir():
            return False
        tmp = base / f".new-{uuid.uuid4().hex}"
        try:
            make(tmp)
            os.rename(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return True
    finally:
        os.close(create_fd)


def _touch(base: Path, index: int, description: str, *, use: bool = True
           ) -> dict[str, Any] | None:
    """The record data of instance ``index`` (made when missing, e.g. an instance older
    than records); ``use``: count a use now. None when the instance does not exist."""
    meta_path = base / f"{index}.json"
    fd = _open_lock(base / "create.lock")  # serialises the read-modify-write of users
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            created = (base / str(index)).stat().st_mtime
        except FileNotFoundError:
            return None
        try:
            meta: dict[str, Any] = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            meta = {"id": _new_record_id(), "created": created, "last_used": created,
                    "usage_count": 0, "description": description}
        else:
            if not use:
                return meta
        if use:
            meta["last_used"] = time.time()
            meta["usage_count"] = int(meta.get("usage_count", 0)) + 1
        tmp = base / f".{index}.json.{uuid.uuid4().hex}"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, meta_path)
        return meta
    finally:
        os.close(fd)


def _file_id(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return os.major(st.st_dev), os.minor(st.st_dev), st.st_ino


def _locked_files(root: Path) -> set[tuple[int, int, int]] | None:
    """(major, minor, inode) of every file someone holds a lock on, from /proc/locks
    (waiters, ``->``, hold nothing yet); None when it cannot be read, or when it does not
    show a lock taken under ``root`` as stat names the file (e.g. on overlayfs)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / "probe.lock"
        fd = _open_lock(probe)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # shared: probes never wait for each other
        text = Path("/proc/locks").read_text()
        probe_id = _file_id(probe)
    except OSError:
        return None
    finally:
        os.close(fd)
    out: set[tuple[int, int, int]] = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] == "->":
            continue
        major, minor, inode = fields[5].split(":")
        out.add((int(major, 16), int(minor, 16), int(inode)))
    return out if probe_id in out else None


def _held(lock: Path, locked: set[tuple[int, int, int]] | None) -> bool:
    """Whether someone holds the lock (shared or exclusive): the instance is in use.
    Read from /proc/locks, as a probe taking the lock could send a ``private`` user that
    comes at that moment to a new instance."""
    if locked is not None:
        try:
            return _file_id(lock) in locked
        except FileNotFoundError:
            return False
    fd = _open_lock(lock)
    try:
        return not _try_flock(fd, fcntl.LOCK_EX)
    finally:
        os.close(fd)  # drops the probe's lock, if it got it


def _open_lock(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _try_flock(fd: int, op: int) -> bool:
    try:
        fcntl.flock(fd, op | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise


def _copy_tree(src: Path, dst: Path) -> None:
    """Copy a seed directory preserving owners, modes, links and xattrs (cp -a)."""
    if not src.is_dir():
        raise BuildError(f"cache mount seed {src} is not a directory")
    proc = subprocess.run(
        ["cp", "-a", "--reflink=auto", f"{src}/.", str(dst)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        shutil.rmtree(dst, ignore_errors=True)
        raise BuildError(
            f"cannot seed cache mount from {src}: {proc.stderr.decode(errors='replace').strip()}"
        )
