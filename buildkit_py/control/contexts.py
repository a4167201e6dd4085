"""The daemon's copies of the directories clients lend (``<root>/control/contexts``).

A client's context is synced into a copy kept between builds, so the next build of the
same context re-sends only what changed. Concurrent builds of one context each get a
copy of their own (a slot), so one build never sees files change under it. ``du`` and
``prune`` list and drop the copies like cache records (``source.local``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from buildkit_py.api.usage import UsageItem
from buildkit_py.snapshot.base import disk_usage

SLOTS = 8  # concurrent builds of one context each get their own synced copy


class ContextCache:
    """Per-client-context synced directories: a context id gets slot 0 normally;
    builds running at the same time on the same context take further slots."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._busy: set[str] = set()
        self._named: dict[str, threading.Lock] = {}

    def named_lock(self, name: str) -> threading.Lock:
        """Builds lending a named context ``name`` take turns: the converter gives
        every build's ``local://ctx-NAME`` source the same digest, so two at once would
        share one client's files."""
        with self._lock:
            return self._named.setdefault(name, threading.Lock())

    @contextlib.contextmanager
    def acquire(self, context_id: str) -> Iterator[Path]:
        base = hashlib.sha256(context_id.encode()).hexdigest()[:32]
        slot = ""
        while not slot:
            with self._lock:
                for n in range(SLOTS):
                    name = f"{base}-{n}"
                    if name not in self._busy:
                        self._busy.add(name)
                        slot = name
                        break
            if not slot:
                time.sleep(0.2)
        try:
            path = self.root / slot
            path.mkdir(parents=True, exist_ok=True)
            os.utime(path)  # last use, for pruning
            yield path
        finally:
            with self._lock:
                self._busy.discard(slot)


    def usage(self) -> list[UsageItem]:
        """One record per synced context copy (``source.local`` in BuildKit's terms)."""
        out: list[UsageItem] = []
        if not self.root.is_dir():
            return out
        for entry in sorted(self.root.iterdir()):
            with self._lock:
                busy = entry.name in self._busy
            st = entry.stat()
            out.append(UsageItem(f"context:{entry.name}", disk_usage(entry).size,
                                 st.st_ctime, st.st_mtime, "local context copy", 1, busy,
                                 "source.local"))
        return out

    def prune(self, keep_duration: float | None,
              only: Callable[[UsageItem], bool] | None = None) -> list[UsageItem]:
        """Drop copies not used within ``keep_duration`` seconds (None: all unused) that
        ``only`` (prune --filter) accepts."""
        now = time.time()
        removed: list[UsageItem] = []
        for item in self.usage():
            if item.in_use or (keep_duration is not None
                               and item.last_used >= now - keep_duration):
                continue
            if only is not None and not only(item):
                continue
            name = item.id.removeprefix("context:")
            with self._lock:
                if name in self._busy:
                    continue
                self._busy.add(name)
            try:
                shutil.rmtree(self.root / name, ignore_errors=True)
            finally:
                with self._lock:
                    self._busy.discard(name)
            removed.append(item)
        return removed
