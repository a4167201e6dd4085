"""The embedded client: a builder core inside the ``bkpy`` process.

One process at a time owns a state directory (an exclusive lock on
``<root>/embedded.lock``); a second ``bkpy build`` on the same root waits for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from buildkit_py.builder.core import BuildOutcome, ProgressSink
from buildkit_py.client.base import PruneOptions, UsageItem, WorkerInfo
from buildkit_py.client.request import BuildRequest
from buildkit_py.config import BuilderConfig

if TYPE_CHECKING:
    from buildkit_py.builder.core import Builder


@contextlib.contextmanager
def state_lock(root: Path) -> Iterator[None]:
    """Hold ``root`` for this process; another embedded builder on it waits its turn."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / "embedded.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def open_builder(config: BuilderConfig) -> Iterator[Builder]:
    """The builder core over ``config.root``, under the state directory's lock."""
    from buildkit_py.builder.core import Builder

    with state_lock(config.root), Builder(config) as builder:
        yield builder


class EmbeddedClient:
    """The builder core in this process (the ``embedded`` driver), one call at a time."""

    def __init__(self, config: BuilderConfig) -> None:
        self.config = config

    def build(self, req: BuildRequest, progress: ProgressSink) -> BuildOutcome:
        with open_builder(self.config) as builder:
            return builder.build(req, progress)

    def disk_usage(self) -> list[UsageItem]:
        from buildkit_py.control.gc import disk_usage

        with open_builder(self.config) as builder:
            return disk_usage(builder)

    def prune(self, opts: PruneOptions) -> Iterator[UsageItem]:
        from buildkit_py.control.gc import prune

        with open_builder(self.config) as builder:
            yield from prune(builder, opts)

    def workers(self) -> list[WorkerInfo]:
        from buildkit_py.control.gc import local_worker_info

        return [local_worker_info(self.config)]

    def close(self) -> None:
        pass
