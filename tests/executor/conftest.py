"""Fixtures: busybox rootfs directories and executors for every usable OCI runtime.

Tests taking the ``runtime`` fixture run once per runtime: Debian's ``runc`` always, and the
bundled ``bkpy-runc`` as soon as it can run a container (probed once per session).
``BKPY_TEST_RUNTIMES=runc,bkpy-runc`` forces the list (to make a broken runtime fail loudly).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from buildkit_py.errors import UserError
from buildkit_py.executor import ExecRequest, Executor

BUSYBOX = {
    "amd64": Path("/var/cache/bkpy-test/busybox-amd64"),
    "arm64": Path("/var/cache/bkpy-test/busybox-arm64"),
}

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
alice:x:1000:1000:Alice:/home/alice:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """\
root:x:0:
daemon:x:1:
wheel:x:10:root
staff:x:50:alice
alice:x:1000:
nogroup:x:65534:
"""


# Applets the tests use (linking all ~400 makes every rootfs noticeably slower to set up).
APPLETS = (
    "sh", "cat", "echo", "id", "pwd", "hostname", "ls", "touch", "stat", "grep", "wc", "test",
    "[", "sleep", "ip", "uname", "true", "false", "env", "mkdir", "rm", "kill",
)  # fmt: skip
_SHARED_BINARIES = Path(tempfile.mkdtemp(prefix="bkpy-executor-test-bin-"))
atexit.register(shutil.rmtree, _SHARED_BINARIES, True)


def _busybox(arch: str) -> Path:
    """One copy of each busybox per session; rootfs directories hard-link it."""
    path = _SHARED_BINARIES / f"busybox-{arch}"
    if not path.exists():
        shutil.copy2(BUSYBOX[arch], path)
    return path


def make_busybox_rootfs(dest: Path, arch: str = "amd64") -> Path:
    """A minimal image-like rootfs: busybox with applet links, passwd/group, the usual dirs."""
    for d in ("bin", "etc", "proc", "dev", "sys", "root", "tmp", "home/alice"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    os.chown(dest / "home/alice", 1000, 1000)
    try:
        os.link(_busybox(arch), dest / "bin/busybox")
    except OSError:  # another filesystem
        shutil.copy2(BUSYBOX[arch], dest / "bin/busybox")
    for applet in APPLETS:
        os.symlink("busybox", dest / "bin" / applet)
    (dest / "etc/passwd").write_text(PASSWD)
    (dest / "etc/group").write_text(GROUP)
    return dest


def _probe(runtime: str) -> bool:
    """Can ``runtime`` run ``true`` in a busybox rootfs through the executor?"""
    with tempfile.TemporaryDirectory(prefix="bkpy-probe-") as tmp:
        try:
            executor = Executor(runtime, Path(tmp) / "state")
            root = make_busybox_rootfs(Path(tmp) / "rootfs")
            try:
                code = executor.run(
                    ExecRequest(rootfs=root, args=["/bin/true"]),
                    stdout=lambda b: None, stderr=lambda b: None,
                )  # fmt: skip
            finally:
                executor.close()
        except (UserError, OSError):
            return False
        return code == 0


def _runtimes() -> list[str]:
    forced = os.environ.get("BKPY_TEST_RUNTIMES")
    if forced:
        return [r for r in forced.split(",") if r]
    return ["runc"] + (["bkpy-runc"] if _probe("bkpy-runc") else [])


RUNTIMES = _runtimes()


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    return make_busybox_rootfs(tmp_path / "rootfs")


@pytest.fixture
def executor(runtime: str, tmp_path: Path) -> Iterator[Executor]:
    # A private bundle root on tmpfs, so leftovers of this test alone can be checked.
    bundles = Path(tempfile.mkdtemp(prefix="bkpy-test-bundles-", dir="/dev/shm"))
    ex = Executor(runtime, tmp_path / "state", bundle_root=bundles)
    yield ex
    ex.close()
    shutil.rmtree(bundles, ignore_errors=True)


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run(
    executor: Executor,
    req: ExecRequest,
    cancel: threading.Event | None = None,
) -> Result:
    out: list[bytes] = []
    err: list[bytes] = []
    code = executor.run(req, stdout=out.append, stderr=err.append, cancel=cancel)
    return Result(code, b"".join(out).decode(), b"".join(err).decode())


@pytest.fixture
def sh(executor: Executor, rootfs: Path) -> Callable[..., Result]:
    """Run a shell snippet in the busybox rootfs: ``sh("echo hi", user="alice")``."""

    def _sh(script: str, **kwargs: object) -> Result:
        req = ExecRequest(rootfs=rootfs, args=["/bin/sh", "-c", script], **kwargs)  # type: ignore[arg-type]
        return run(executor, req)

    return _sh


def snapshot_tree(root: Path) -> dict[str, tuple[int, int, int]]:
    """(mode, size, mtime_ns) of every path under root, to compare a rootfs before/after."""
    out: dict[str, tuple[int, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            out[os.path.relpath(path, root)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    st = os.lstat(root)
    out["."] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out
