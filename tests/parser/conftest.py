"""Shared paths and helpers for the parser tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFORMANCE = REPO.parent / "shared" / "conformance" / "parser"
CORPUS = REPO / "testdata" / "dockerfiles" / "parse"


def _bkpy() -> list[str]:
    """The installed ``bkpy`` console script (``python -m buildkit_py`` if not on PATH)."""
    script = Path(sys.executable).with_name("bkpy")
    if script.exists():
        return [str(script)]
    found = shutil.which("bkpy")
    return [found] if found else [sys.executable, "-m", "buildkit_py"]


def run_bkpy(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run the real ``bkpy`` CLI in a subprocess."""
    env = dict(os.environ)
    env.pop("BKPY_DEBUG", None)
    return subprocess.run(
        [*_bkpy(), *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    if not CONFORMANCE.is_dir():
        raise RuntimeError(f"conformance cases missing: {CONFORMANCE} (shared/ beside the repo)")
    return CONFORMANCE
