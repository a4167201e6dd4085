"""A Dockerfile error shows the Dockerfile's lines around it, ``>>>`` on the failing ones,
exactly as the newest BuildKit printed them for the same files (recorded by
``tests/e2e/record_screens.py`` into ``testdata/screens/errors.json``): parse errors,
bad flags and values, an unterminated heredoc, expansion errors, a missing COPY source
and a missing base image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import Bkpy
from tests.e2e.screens_cases import ERROR_CASES, context_block
from tests.registry.fixtures import RegistryServer

EXPECTED = json.loads((Path(__file__).resolve().parents[2] / "testdata" / "screens" /
                       "errors.json").read_text())


@pytest.fixture(scope="module")
def base(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """busybox in a registry, as the referee saw it (the missing base image is a name
    next to it that the registry does not have)."""
    from tests.images import push_layout, write_busybox_layout

    layout = write_busybox_layout(tmp_path_factory.mktemp("bb") / "layout", ("amd64",))
    return push_layout(layout, f"{registry.host}/errors/busybox")


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_the_error_shows_its_lines_as_buildkit(bkpy: Bkpy, tmp_path: Path, base: str,
                                                case: str) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(ERROR_CASES[case].replace("{BASE}", base))
    (ctx / "a.txt").write_text("a\n")
    for progress in ("plain", "quiet"):
        r = bkpy("build", "--progress", progress, str(ctx), check=False)
        assert r.code == EXPECTED[case]["exit"] and "Traceback" not in r.err
        assert context_block(r.err.replace(base, "{BASE}")) == EXPECTED[case]["block"]
        # the block comes right before the ERROR line
        block_end = r.err.index("-" * 20 + "\nERROR: ")
        assert r.err.index("Dockerfile:") < block_end
