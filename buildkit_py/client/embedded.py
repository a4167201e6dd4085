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

from buildkit_py.builder.core import BuildOutcome, ProgressSink
from buildkit_py.client.request import BuildRequest
from buildkit_py.config import BuilderConfig


@contextlib.contextmanager
def _state_lock(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / "embedded.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(fd, fcntl.LOCK_EX)  # another build on this root: wait our turn
        yield
    finally:
        os.close(fd)



class EmbeddedClient:
    def __init__(self, config: BuilderConfig) -> None:
        self.config = config

    def build(self, req: BuildRequest, progress: ProgressSink) -> BuildOutcome:
        from buildkit_py.builder.core import Builder

        with _state_lock(self.config.root), Builder(self.config) as builder:
            return builder.build(req, progress)
