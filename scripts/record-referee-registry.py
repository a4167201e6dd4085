#!/usr/bin/env python3
"""Record what the referee (the newest BuildKit, through buildctl) asks a registry, into
testdata/referee-registry/SCENARIO.json (see tests/referee/registry_traffic.py).

    scripts/record-referee-registry.py --label 'buildkit 73ed6825c'

Scenarios, each on a fresh docker-registry behind a recording proxy, with the test base
image (a two-platform busybox index) pushed as ``rr/base:1``:

- ``rebuild``: a build ``FROM`` it, then the same build again: the second one's requests;
- ``push-from-same-registry``: a build ``FROM`` it pushed to ``rr/app:1``;
- ``push-to-second-repository``: the same image pushed again to ``rr/copy:1``.

What BuildKit asks depends on what its content store already holds (a blob it had before
this pull carries no label for this registry, so it is uploaded, not mounted), so the
referee is restarted on an empty root first, as the bench does for a cold build. Needs the
referee built, docker-registry and skopeo.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.images import write_busybox_layout  # noqa: E402
from tests.referee.registry_traffic import RECORDED, traffic  # noqa: E402
from tests.registry.fixtures import Proxy, RegistryServer  # noqa: E402

DOCKERFILE = "FROM {host}/rr/base:1\nRUN echo {stamp} > /made\n"


def _env() -> dict[str, str]:
    """This environment with the referee's exports applied (its buildctl, its socket)."""
    tool = REPO.parent / "shared" / "tools" / "buildkit-referee"
    out = subprocess.run(["bash", "-c", f'eval "$({tool} env)" && env -0'],
                         capture_output=True, check=True).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def _buildctl(env: dict[str, str], ctx: Path, output: str | None) -> None:
    cmd = ["buildctl", "build", "--frontend", "dockerfile.v0", "--local", f"context={ctx}",
           "--local", f"dockerfile={ctx}"]
    if output:
        cmd += ["--output", output]
    subprocess.run(cmd, env=env, check=True, capture_output=True)


def _restart_empty() -> None:
    tool = str(REPO.parent / "shared" / "tools" / "buildkit-referee")
    subprocess.run([tool, "stop"], capture_output=True, check=False)
    root = Path(os.environ.get("REFEREE_DIR", "/var/tmp/buildkit-referee")) / "root"
    subprocess.run(["rm", "-rf", str(root)], check=True)
    subprocess.run([tool, "start"], capture_output=True, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--label", required=True, help="what recorded them")
    args = ap.parse_args()
    env = _env()
    _restart_empty()
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "registry").mkdir()
        registry = RegistryServer(t / "registry")
        proxy = Proxy(registry.host)
        try:
            layout = write_busybox_layout(t / "busybox", ("amd64", "arm64"))
            subprocess.run(["skopeo", "copy", "--quiet", "--all", "--dest-tls-verify=false",
                            f"oci:{layout}", f"docker://{proxy.host}/rr/base:1"], check=True)
            ctx = t / "ctx"
            ctx.mkdir()
            (ctx / "Dockerfile").write_text(DOCKERFILE.format(host=proxy.host,
                                                              stamp=time.time_ns()))
            scenarios: dict[str, dict[str, int]] = {}
            _buildctl(env, ctx, None)
            proxy.requests.clear()
            _buildctl(env, ctx, None)
            scenarios["rebuild"] = traffic(proxy.requests)
            proxy.requests.clear()
            _buildctl(env, ctx, f"type=image,name={proxy.host}/rr/app:1,push=true")
            scenarios["push-from-same-registry"] = traffic(proxy.requests)
            proxy.requests.clear()
            _buildctl(env, ctx, f"type=image,name={proxy.host}/rr/copy:1,push=true")
            scenarios["push-to-second-repository"] = traffic(proxy.requests)
        finally:
            proxy.stop()
            registry.stop()
    RECORDED.mkdir(parents=True, exist_ok=True)
    for name, counts in scenarios.items():
        (RECORDED / f"{name}.json").write_text(json.dumps(
            {"recorded_by": args.label, "requests": counts}, indent=1) + "\n")
        print(name, counts)


if __name__ == "__main__":
    main()
