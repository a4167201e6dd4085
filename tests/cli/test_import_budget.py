"""The ``bkpy build`` start path stays lean: a cached build with the embedded builder
must not import the heavy libraries only other paths need (a guard, not a timing test).

- ``networkx``: not used by the solver at all;
- ``grpc``: only the daemon and the remote client speak gRPC;
- ``httpx`` (and httpcore): only registry pulls and pushes, and even then without httpx's
  CLI (rich, pygments) or trio (``tests/registry/test_lean_httpx.py``);
- ``lark``: only to build the grammar tables once; later processes load them from disk.

Nor the builder's rooms that only some builds use (``LAZY_ROOMS``): cache import and
export (``--cache-from``/``--cache-to``), HTTP(S) and Git sources, and the exporters of
outputs the build does not have.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.images import write_busybox_layout

HEAVY = ("networkx", "grpc", "httpx", "httpcore", "lark")
LAZY_ROOMS = ("buildkit_py.remotecache", "buildkit_py.source.http", "buildkit_py.source.git",
              "buildkit_py.exporter.oci", "buildkit_py.exporter.image_store",
              "buildkit_py.exporter.image_sets")

# Runs the CLI in-process, then records every module the build imported.
DRIVER = """
import json, sys
from buildkit_py.cli.main import main
try:
    main(sys.argv[2:])
finally:
    with open(sys.argv[1], "w") as f:
        json.dump(sorted(sys.modules), f)
"""

DOCKERFILE = """\
FROM busybox:latest AS base
ARG GREETING=hello
ENV STAGE=base
WORKDIR /app
COPY hello.txt ./
RUN cat hello.txt > copy.txt

FROM base
LABEL purpose=import-budget
RUN echo "$GREETING" > greeting.txt
CMD ["cat", "/app/greeting.txt"]
"""


def _heavy_imports(modules: list[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def _lazy_rooms(modules: list[str]) -> list[str]:
    return sorted(m for m in modules if m.startswith(LAZY_ROOMS))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    root = tmp_path / "state"
    out = dict(os.environ, BKPY_ROOT=str(root), BKPY_CONFIG=str(root / "client"),
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    out.pop("BKPY_DEBUG", None)
    out.pop("BKPY_BUILDER", None)
    layout = write_busybox_layout(tmp_path / "layout")
    subprocess.run([sys.executable, "-m", "buildkit_py", "image", "import", str(layout),
                    "busybox:latest"], env=out, check=True, capture_output=True, timeout=120)
    return out


def _run_recorded(tmp_path: Path, env: dict[str, str], name: str, *args: str) -> list[str]:
    """Run ``bkpy ARGS`` in a fresh process; the modules it had imported when it ended."""
    record = tmp_path / f"{name}.json"
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(record), *args],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    modules: list[str] = json.loads(record.read_text())
    return modules


def _context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "hello.txt").write_text("hello\n")
    return ctx


def test_cached_build_imports_no_heavy_libraries(tmp_path: Path, env: dict[str, str]) -> None:
    ctx = _context(tmp_path)
    build = ("build", "--progress=plain", str(ctx))
    cold = _run_recorded(tmp_path, env, "cold", *build)
    # The first process compiles the grammar tables with Lark (the cache starts empty):
    # proof that the recorder sees such imports.
    assert "lark" in cold

    cached = _run_recorded(tmp_path, env, "cached", *build)
    assert "buildkit_py.solver.solver" in cached  # the build really went through the solver
    assert _heavy_imports(cached) == []
    # no --cache-from/--cache-to, ADD of a URL or output: none of those rooms, cold or not
    assert _lazy_rooms(cold) == []
    assert _lazy_rooms(cached) == []


def test_targets_call_imports_no_solver_or_worker(tmp_path: Path, env: dict[str, str]) -> None:
    ctx = _context(tmp_path)
    call = ("build", "--call=targets", str(ctx))
    _run_recorded(tmp_path, env, "first", *call)  # fills the grammar table cache
    modules = _run_recorded(tmp_path, env, "second", *call)
    assert "buildkit_py.frontend.dockerfile.instructions" in modules
    assert _heavy_imports(modules) == []
    assert [m for m in modules
            if m.startswith(("buildkit_py.solver", "buildkit_py.worker", "asyncio"))] == []
