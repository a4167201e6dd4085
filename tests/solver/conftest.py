from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from buildkit_py.solver import CacheManager, Solver
from tests.solver.dirworker import DirWorker


class Env:
    """A state dir with a worker store and cache DB; makes solvers and cleans them up."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.worker = DirWorker(root / "store")
        self.cache = CacheManager(root / "state")
        self._solvers: list[Solver] = []
        self._caches: list[CacheManager] = [self.cache]

    def solver(self, max_parallelism: int | None = 4) -> Solver:
        s = Solver(self.worker, self.cache, max_parallelism=max_parallelism)
        self._solvers.append(s)
        return s

    def restart(self) -> None:
        """Forget everything in memory: new worker object, cache manager and solver."""
        self.close()
        self.worker = DirWorker(self.root / "store")
        self.cache = CacheManager(self.root / "state")
        self._caches.append(self.cache)

    def close(self) -> None:
        for s in self._solvers:
            s.close()
        self._solvers.clear()
        for c in self._caches:
            c.close()
        self._caches.clear()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.close()


Factory = Callable[..., Solver]
