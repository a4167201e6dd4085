"""A base image pulled from a registry unpacks as the referee unpacks it: built FROM the
layered image of tests/referee/pulled_base.py, the image bkpy exports (its files, modes,
owners and config, including what the RUN saw of the pulled tree) is what the newest
BuildKit exported, recorded by scripts/record-referee-pull.py."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import make_runner
from tests.referee import pulled_base as base
from tests.referee.observe import compare, observe
from tests.registry.fixtures import RegistryServer


def test_a_pulled_layered_base_unpacks_as_the_referee_unpacked_it(
        registry: RegistryServer, tmp_path: Path) -> None:
    base.push_base(base.write_layered_layout(tmp_path / "layout"), registry.host)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(base.DOCKERFILE.format(host=registry.host))
    out = tmp_path / "image.tar"
    run = make_runner(tmp_path / "state")("build", *base.build_args(ctx, out), check=False)
    expected = {k: v for k, v in json.loads(base.EXPECTED.read_text()).items() if k != "referee"}
    assert compare(expected, observe(run.code, run.err, out, base.PLATFORMS, False)) == [], run.err
