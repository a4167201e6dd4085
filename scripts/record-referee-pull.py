#!/usr/bin/env python3
"""Record what the referee (the newest BuildKit, through buildx) builds FROM a layered
base image it pulls from a registry, into testdata/referee-pull/expected.json (see
tests/referee/pulled_base.py; checked by tests/e2e/test_pull_referee.py).

    scripts/record-referee-pull.py --label 'buildkit 73ed6825c'

Needs the referee running (``buildkit-referee start``) with its buildx builder ``referee``
(scripts/record-referee.py makes it), docker-registry and skopeo.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from tests.referee.observe import observe  # noqa: E402
from tests.referee.pulled_base import (  # noqa: E402
    DOCKERFILE,
    EXPECTED,
    PLATFORMS,
    build_args,
    push_base,
    write_layered_layout,
)
from tests.registry.fixtures import RegistryServer  # noqa: E402

record_referee = __import__("record-referee")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--label", required=True, help="what recorded it")
    args = ap.parse_args()
    env = record_referee.referee_env()
    record_referee.ensure_builder(env)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "registry").mkdir()
        registry = RegistryServer(t / "registry")
        try:
            push_base(write_layered_layout(t / "layout"), registry.host)
            ctx = t / "ctx"
            ctx.mkdir()
            (ctx / "Dockerfile").write_text(DOCKERFILE.format(host=registry.host))
            out = t / "image.tar"
            p = subprocess.run(["docker-buildx", "build", "--builder", record_referee.BUILDER,
                                "--no-cache", *build_args(ctx, out)],
                               capture_output=True, text=True, env=env, timeout=600)
            if p.returncode != 0:
                sys.exit(f"the referee's build failed:\n{p.stderr[-3000:]}")
            observed = observe(p.returncode, p.stderr, out, PLATFORMS, False)
        finally:
            registry.stop()
    EXPECTED.parent.mkdir(parents=True, exist_ok=True)
    EXPECTED.write_text(json.dumps({"referee": args.label, **observed}, indent=1) + "\n")
    print(f"wrote {EXPECTED}")


if __name__ == "__main__":
    main()
