"""Persistent ``RUN --mount=type=cache`` directories and their sharing modes.

Layout: ``<root>/<key>/<n>`` holds instance ``n`` of the cache with id ``id`` (``key`` is a
readable, collision-free form of the id); ``<n>.lock`` is its lock file. ``shared`` users take
a shared flock on instance 0, ``locked`` users an exclusive one (so they wait for each other),
``private`` users the first instance nobody holds, creating a new one when all are busy.
flock works between threads (each acquire opens its own file description) and between
processes, so a daemon and an embedded builder on one state dir agree.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from buildkit_py.errors import BuildError
from buildkit_py.executor.errors import ExecCancelledError

SHARING_MODES = ("shared", "private", "locked")
DIR_NAME = "cache-mounts"  # under the executor's state directory
_POLL = 0.05


def cache_key(cache_id: str) -> str:
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", cache_id).strip("_.")[:48] or "cache"
    digest = hashlib.sha256(cache_id.encode()).hexdigest()[:16]
    return f"{readable}-{digest}"


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
    ) -> CacheLease:
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
        except BaseException:
            os.close(fd)
            raise
        return CacheLease(path, fd)

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
