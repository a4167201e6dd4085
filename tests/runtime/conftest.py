"""Fixtures for running bundles through bkpy-runc and, for comparison, Debian's runc."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from .bundle import config, make_rootfs, write_bundle

RUNTIME_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "runtime")
BKPY_RUNC = [sys.executable, "-S", "-I", os.path.join(RUNTIME_DIR, "bkpy_runc", "__main__.py")]
_ids = itertools.count()


class Result:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def __repr__(self) -> str:
        return f"Result(rc={self.rc}, out={self.out!r}, err={self.err!r})"


class Runtimes:
    """Runs bundles with either runtime, each with its own state root under tmp."""

    def __init__(self, tmp: str, rootfs: str) -> None:
        self.tmp = tmp
        self.rootfs = rootfs
        self.roots = {"bkpy": os.path.join(tmp, "state-bkpy"),
                      "runc": os.path.join(tmp, "state-runc")}

    def argv(self, runtime: str) -> list[str]:
        base = BKPY_RUNC if runtime == "bkpy" else ["runc"]
        return [*base, "--root", self.roots[runtime]]

    def bundle(self, args: list[str], rootfs: Any = None, **over: Any) -> str:
        """Write a bundle for ``args``; ``over`` patches config keys ("process.cwd": ...)."""
        cfg = config(rootfs or self.rootfs, args, **over)
        return write_bundle(self.tmp, f"bundle{next(_ids)}", cfg)

    def run(self, runtime: str, bundle: str, *extra: str, timeout: float = 30) -> Result:
        cid = f"t{os.getpid()}-{next(_ids)}"
        proc = subprocess.run([*self.argv(runtime), "run", *extra, "--bundle", bundle, cid],
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
        return Result(proc)

    def cmd(self, runtime: str, *args: str, timeout: float = 30, **kw: Any) -> Result:
        """Run a runtime command; pass stdout=/stderr= to redirect instead of capturing."""
        if "stdout" not in kw:
            kw["capture_output"] = True
        proc = subprocess.run([*self.argv(runtime), *args], text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False, **kw)
        return Result(proc)

    def both(self, args: list[str], **over: Any) -> tuple[Result, Result]:
        bundle = self.bundle(args, **over)
        return self.run("bkpy", bundle), self.run("runc", bundle)


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_rootfs(str(tmp_path_factory.mktemp("rootfs")))


@pytest.fixture
def rt(tmp_path: Any, rootfs: str) -> Iterator[Runtimes]:
    r = Runtimes(str(tmp_path), rootfs)
    yield r
    # Nothing may be left behind: every test's containers are deleted by then.
    for runtime, root in r.roots.items():
        leftovers = os.listdir(root) if os.path.isdir(root) else []
        for cid in leftovers:
            r.cmd(runtime, "delete", "--force", cid)
        assert runtime != "bkpy" or not leftovers, f"state left behind: {leftovers}"
