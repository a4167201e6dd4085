"""buildkitd.toml's ``[worker.oci] binary`` chooses the OCI runtime bkpy runs RUN steps
with (in place of its own bkpy-runc), embedded as in bkpyd."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.e2e.conftest import Bkpy


def _config(tmp_path: Path, binary: str) -> dict[str, str]:
    path = tmp_path / f"buildkitd-{binary.replace('/', '_')}.toml"
    path.write_text(f'[worker.oci]\nbinary = "{binary}"\ngc = false\n')
    return {"BKPY_BUILDER_CONFIG": str(path)}


def test_worker_binary_is_the_runtime(fresh_bkpy: Bkpy, tmp_path: Path) -> None:
    assert shutil.which("runc"), "scripts/setup.sh installs runc"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo ran > /ran\n")
    missing = fresh_bkpy("build", "--no-cache", "--progress", "plain", str(ctx),
                         env=_config(tmp_path, "/nonexistent/runc"), check=False)
    assert missing.code == 1, missing.err  # found when the step runs
    assert "OCI runtime /nonexistent/runc is not an executable file" in missing.err
    fresh_bkpy("build", "--no-cache", "--progress", "plain",
               "-o", f"type=local,dest={tmp_path / 'out'}", str(ctx),
               env=_config(tmp_path, "runc"))
    assert (tmp_path / "out" / "ran").read_text() == "ran\n"
