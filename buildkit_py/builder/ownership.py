"""Who owns a state root, and when a new owner must clean up after the previous one.

One process at a time owns a root: it holds an exclusive ``flock`` on
``<root>/embedded.lock`` from before the builder opens until after it closes. ``bkpyd``
takes the same lock for its lifetime as every embedded command (``bkpy build``, ``du``,
``prune``, ``image ...``) takes it per command, so a daemon and embedded commands never
use one root at the same time: an embedded command waits for its turn, a daemon refuses
to start. The lock dies with its process, so a killed owner never blocks the next one.

While it owns the root, the owner keeps a record of itself (pid, program) in the lock
file and empties it when it lets go normally. A new owner that finds a record knows the
previous one died (SIGKILL, OOM kill, crash) while it may have had builds running, and
runs :mod:`recovery` before it opens the builder: holding the lock proves that nothing
found is live. A clean root costs one read and one write of the lock file per command.

The record is not synced to disk (that would cost every command a journal commit): after
a power loss during a very short build it may be missing, and the snapshots that build
left unfinished stay until ``bkpy prune`` (see README).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from buildkit_py.builder.core import Builder
from buildkit_py.builder.recovery import recover_after_open, recover_before_open
from buildkit_py.errors import UsageError, UserError

if TYPE_CHECKING:
    from buildkit_py.config import BuilderConfig

LOCK_NAME = "embedded.lock"  # the name predates bkpyd, which takes the same lock
_RECORD_MAX = 512

_log = logging.getLogger(__name__)


class RootInUseError(UsageError):
    """Another process owns the state root and the caller would not wait."""


@dataclass
class Ownership:
    """What :func:`own_root` found. ``previous``: the record of an owner that died, ""
    when the last one let go normally. ``stale``: the root may hold another process's
    leftovers; the caller clears it once it has cleaned them up."""

    previous: str
    stale: bool


@contextlib.contextmanager
def own_root(root: Path, program: str, *, wait: bool) -> Iterator[Ownership]:
    """Own ``root`` for the block. ``wait``: queue behind a live owner, else raise
    :class:`RootInUseError`.

    The record is cleared on leaving normally or with a :class:`UserError` (an expected
    failure: the builder wound its builds down), unless ``stale`` is still set; any other
    exception (an interrupt, a bug) leaves it, and the next owner cleans up."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        _lock(fd, root, wait)
    except BaseException:
        os.close(fd)
        raise
    try:
        previous = _read_record(fd)
        owner = Ownership(previous, stale=bool(previous))
        record = f"{program} pid {os.getpid()}".encode()
        os.pwrite(fd, record, 0)
        os.ftruncate(fd, len(record))
        try:
            yield owner
        except UserError:
            if not owner.stale:
                os.ftruncate(fd, 0)
            raise
        if not owner.stale:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def _lock(fd: int, root: Path, wait: bool) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        if not wait:
            holder = _read_record(fd)
            raise RootInUseError(
                f"state directory {root} is in use by another bkpyd or bkpy command"
                + (f" ({holder})" if holder else ""),
                hint="stop it, or give this one its own --root") from None
    fcntl.flock(fd, fcntl.LOCK_EX)


def _read_record(fd: int) -> str:
    return os.pread(fd, _RECORD_MAX, 0).decode(errors="replace").strip()


@contextlib.contextmanager
def open_owned_builder(config: BuilderConfig, program: str, *, wait: bool
                       ) -> Iterator[Builder]:
    """The builder core over ``config.root``, owned (see :func:`own_root`) for the block,
    after cleaning up what a previous owner that died left behind."""
    with own_root(config.root, program, wait=wait) as owner:
        if owner.stale:
            _log.warning("%s: its previous owner (%s) did not exit cleanly; cleaning up "
                         "after it", config.root, owner.previous)
            recover_before_open(config.root, config.oci_runtime)
        with Builder(config) as builder:
            if owner.stale:
                recover_after_open(builder)
                owner.stale = False
            yield builder
