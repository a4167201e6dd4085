"""The compiled ``bkpy`` client (``launcher/bkpy.c``): it hands commands to the warm
server without starting an interpreter, and leaves everything else to ``bkpy-py``.

The tests run a copy of the installed client in a private directory (with ``bkpy-py``
linked beside it), so its key file is theirs alone. "No interpreter started" is checked
with ``PYTHONHOME=/nonexistent`` in the caller's environment: any Python started under it
dies at once, while the server's worker (forked long before) runs ``--version`` fine.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildkit_py.cli.autostart import log_path
from tests.cli.test_cmdserver import _running, _socket
from tests.e2e.conftest import make_runner
from tests.images import write_busybox_layout

SCRIPTS = Path(sysconfig.get_path("scripts"))
NO_PYTHON = {"PYTHONHOME": "/nonexistent"}


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_busybox_layout(tmp_path_factory.mktemp("bb") / "layout", ("amd64",))


@pytest.fixture
def client(tmp_path: Path) -> Path:
    installed = SCRIPTS / "bkpy"
    assert installed.read_bytes()[:4] == b"\x7fELF", (
        f"{installed} is not the compiled client: run scripts/setup.sh (needs a C compiler)")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shutil.copy2(installed, bindir / "bkpy")
    (bindir / "bkpy-py").symlink_to(SCRIPTS / "bkpy-py")
    return bindir / "bkpy"


@pytest.fixture
def root(tmp_path: Path, layout: Path) -> Iterator[Path]:
    state = tmp_path / "state"
    local = make_runner(state)  # BKPY_NO_SERVER=1, as the whole suite
    local("image", "import", str(layout), "busybox:latest")
    assert "started" in local("server", "start", "--idle-timeout", "0").out
    try:
        yield state
    finally:
        local("server", "stop", check=False)
        Path(log_path(_socket(state))).unlink(missing_ok=True)


def _env(root: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, BKPY_ROOT=str(root), BKPY_CONFIG=str(root / "client"))
    for name in ("BKPY_DEBUG", "BKPY_NO_SERVER", "BKPY_LAUNCHER"):
        env.pop(name, None)
    env.update(extra)
    return env


def _run(client: Path, root: Path, *args: str, cwd: Path | None = None,
         stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(client), *args], env=_env(root, **env), cwd=cwd or root.parent,
                          input=stdin, capture_output=True, text=True, timeout=300)


def _served(root: Path) -> list[str]:
    text = Path(log_path(_socket(root))).read_text()
    return [line.split(": ", 1)[1] for line in text.splitlines() if ": bkpy " in line]


def _key_file(client: Path) -> Path:
    import hashlib

    from buildkit_py.cli.launch import server_dir

    digest = hashlib.sha256(str(client).encode()).hexdigest()[:16]
    return Path(server_dir()) / f"launcher-{digest}.key"


def test_first_command_teaches_the_client_the_key_then_no_interpreter_starts(
        client: Path, root: Path) -> None:
    key = _key_file(client)
    key.unlink(missing_ok=True)
    # No key yet: only Python knows it, so the compiled client runs bkpy-py.
    assert _run(client, root, "--version", **NO_PYTHON).returncode != 0
    first = _run(client, root, "--version")
    assert first.returncode == 0 and "version" in first.stdout, first.stderr
    assert key.exists()
    try:
        served = _run(client, root, "--version", **NO_PYTHON)
        assert served.returncode == 0 and "version" in served.stdout, served.stderr
        assert _served(root).count("bkpy --version") == 2
    finally:
        key.unlink(missing_ok=True)


def _teach(client: Path, root: Path) -> Path:
    key = _key_file(client)
    assert _run(client, root, "--version").returncode == 0
    assert key.exists()
    return key


def test_a_stale_key_file_or_no_server_setting_leaves_it_to_python(
        client: Path, root: Path) -> None:
    key = _teach(client, root)
    try:
        # The client binary replaced (reinstall): its identity no longer matches.
        st = client.stat()
        os.utime(client, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        assert _run(client, root, "--version", **NO_PYTHON).returncode != 0
        assert _run(client, root, "--version").returncode == 0  # rewrites the key
        assert _run(client, root, "--version", **NO_PYTHON).returncode == 0
        # The package changed under an unchanged client: a stamp no longer matches.
        text = key.read_bytes()
        stamp = next(line for line in text.split(b"\n") if line.startswith(b"stamp "))
        _, mtime, path = stamp.split(b" ", 2)
        key.write_bytes(text.replace(stamp, b"stamp %d %s" % (int(mtime) + 1, path)))
        assert _run(client, root, "--version", **NO_PYTHON).returncode != 0
        assert _run(client, root, "--version").returncode == 0
        assert _run(client, root, "--version", **NO_PYTHON).returncode == 0
        # BKPY_NO_SERVER=1: Python runs the command itself.
        before = len(_served(root))
        assert _run(client, root, "--version", BKPY_NO_SERVER="1", **NO_PYTHON).returncode != 0
        assert _run(client, root, "--version", BKPY_NO_SERVER="1").returncode == 0
        assert len(_served(root)) == before
    finally:
        key.unlink(missing_ok=True)


def test_a_build_through_the_client_gets_cwd_env_stdin_and_exit_status(
        client: Path, root: Path, tmp_path: Path) -> None:
    key = _teach(client, root)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    try:
        dockerfile = ("FROM busybox\nARG FOO\nRUN printf '%s' \"$FOO\" > /foo\n"
                      "FROM scratch\nCOPY --from=0 /foo /foo\nCOPY hello /hello\n")
        (ctx / "hello").write_text("hi\n")
        value = "from the caller's env: h\u00e9llo \u2713 \"quoted\" \\ \t tab"
        ok = _run(client, root, "build", "--progress", "plain", "-f", "-", "--build-arg",
                  "FOO", "-o", "type=local,dest=out", ".", cwd=ctx, stdin=dockerfile, FOO=value)
        assert ok.returncode == 0, ok.stderr
        assert (ctx / "out" / "foo").read_text() == value
        assert (ctx / "out" / "hello").read_text() == "hi\n"
        assert "DONE" in ok.stderr  # progress reached the caller's stderr pipe
        bad = _run(client, root, "build", "-f", "-", ".", cwd=ctx,
                   stdin="FROM busybox\nRUNN true\n")
        local = _run(client, root, "build", "-f", "-", ".", cwd=ctx,
                     stdin="FROM busybox\nRUNN true\n", BKPY_NO_SERVER="1")
        assert bad.returncode == local.returncode == 1
        assert bad.stderr == local.stderr and "Traceback" not in bad.stderr
        assert sum(1 for line in _served(root) if line.startswith("bkpy build")) == 2
        # A caller whose environment is not UTF-8 is served through bkpy-py.
        weird = subprocess.run(
            [str(client), "--version"], capture_output=True, timeout=60, cwd=root.parent,
            env={**{k.encode(): v.encode() for k, v in _env(root).items()},
                 b"ODD": b"\xff\xfe"})
        assert weird.returncode == 0 and b"version" in weird.stdout
        assert _served(root).count("bkpy --version") == 2
    finally:
        key.unlink(missing_ok=True)


def test_interrupt_is_forwarded_and_cancels_the_build(
        client: Path, root: Path, tmp_path: Path) -> None:
    key = _teach(client, root)
    marker = "compiled-client-interrupt"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM busybox\nRUN sleep 600; echo {marker}\n")
    proc = subprocess.Popen([str(client), "build", "--progress", "plain", str(ctx)],
                            env=_env(root), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _running(marker):
            time.sleep(0.2)
        assert _running(marker), "the RUN step never started"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        key.unlink(missing_ok=True)
    assert proc.returncode == 130, err
    assert any(line.startswith("bkpy build") for line in _served(root))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _running(marker):
        time.sleep(0.2)
    assert not _running(marker), "the container outlived the build"


def test_the_client_source_compiles_without_warnings(tmp_path: Path) -> None:
    source = Path(__file__).resolve().parents[2] / "launcher" / "bkpy.c"
    proc = subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Wconversion", "-Werror", "-o",
                           str(tmp_path / "bkpy"), str(source)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
