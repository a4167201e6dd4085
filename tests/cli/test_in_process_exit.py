"""A command run in the ``bkpy`` process itself ends the way a served one does: output
flushed, then ``os._exit`` (no interpreter teardown). Nothing it wrote may be lost and its
exit status must be the command's."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path


def _bkpy(root: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, BKPY_ROOT=str(root), BKPY_CONFIG=str(root / "client"),
               BKPY_NO_SERVER="1")
    env.pop("BKPY_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "buildkit_py", *args], cwd=cwd, env=env,
                          capture_output=True, timeout=300)


def test_an_image_tarball_on_stdout_arrives_whole(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    payload = os.urandom(3 << 20)  # far more than a pipe holds
    (ctx / "big.bin").write_bytes(payload)
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY big.bin /big.bin\n")
    run = _bkpy(tmp_path / "state", "build", "--progress", "plain", "-o", "type=docker", str(ctx))
    assert run.returncode == 0, run.stderr.decode()
    with tarfile.open(fileobj=io.BytesIO(run.stdout)) as tar:
        (entry,) = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        (layer,) = entry["Layers"]
        blob = tar.extractfile(layer).read()  # type: ignore[union-attr]
    assert hashlib.sha256(blob).hexdigest() == layer.rsplit("/", 1)[-1]
    with tarfile.open(fileobj=io.BytesIO(blob)) as layer_tar:
        assert layer_tar.extractfile("big.bin").read() == payload  # type: ignore[union-attr]
    assert b"DONE" in run.stderr.splitlines()[-1]  # the progress output's last line too


def test_the_exit_status_and_error_are_the_commands(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY missing.txt /\n")
    run = _bkpy(tmp_path / "state", "build", "--progress", "quiet", str(ctx))
    assert run.returncode == 1
    assert b'"/missing.txt": not found' in run.stderr
    usage = _bkpy(tmp_path / "state", "build", "--no-such-flag", str(ctx))
    assert usage.returncode == 2 and b"No such option" in usage.stderr
