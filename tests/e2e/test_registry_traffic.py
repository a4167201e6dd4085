"""What bkpy asks a registry, against what the referee asked in the same scenarios
(recorded by scripts/record-referee-registry.py into testdata/referee-registry/; see
tests/referee/registry_traffic.py). Counted by kind of request on a fresh registry behind
a recording proxy; where bkpy differs on purpose, the difference is spelled out here."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.e2e.conftest import make_runner
from tests.images import write_busybox_layout
from tests.referee.registry_traffic import recorded, traffic
from tests.registry.fixtures import Proxy

DOCKERFILE = "FROM {host}/rr/base:1\nRUN echo {stamp} > /made\n"

# bkpy's own differences from the referee, by scenario: kind -> bkpy's count minus the
# referee's.
DIFFERS: dict[str, dict[str, int]] = {
    "rebuild": {},
    # BuildKit mounts a base layer only while the build that pulled it still holds it; bkpy
    # remembers where every blob came from (the pull's label), so the base layer is mounted
    # from rr/base here too. And bkpy does not HEAD the tag before putting the manifest.
    "push-from-same-registry": {"POST upload mount": 1, "POST upload": -1, "PUT upload": -1,
                                "HEAD manifest by tag": -1},
    "push-to-second-repository": {"POST upload mount": 1, "POST upload": -1,
                                  "PUT upload": -1, "HEAD manifest by tag": -1},
}


def _expected(scenario: str) -> dict[str, int]:
    counts = dict(recorded(scenario)["requests"])  # type: ignore[call-overload]
    for kind, delta in DIFFERS[scenario].items():
        counts[kind] = counts.get(kind, 0) + delta
    return {k: v for k, v in sorted(counts.items()) if v}


def test_bkpy_asks_the_registry_what_the_referee_asked(proxy: Proxy, tmp_path: Path) -> None:
    layout = write_busybox_layout(tmp_path / "busybox", ("amd64", "arm64"))
    subprocess.run(["skopeo", "copy", "--quiet", "--all", "--dest-tls-verify=false",
                    f"oci:{layout}", f"docker://{proxy.host}/rr/base:1"], check=True,
                   timeout=120)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(host=proxy.host, stamp=time.time_ns()))
    bkpy = make_runner(tmp_path / "state")
    got: dict[str, dict[str, int]] = {}
    bkpy("build", "--network", "none", str(ctx))
    proxy.requests.clear()
    bkpy("build", "--network", "none", str(ctx))
    got["rebuild"] = traffic(proxy.requests)
    proxy.requests.clear()
    bkpy("build", "--network", "none", "--push", "-t", f"{proxy.host}/rr/app:1", str(ctx))
    got["push-from-same-registry"] = traffic(proxy.requests)
    proxy.requests.clear()
    bkpy("build", "--network", "none", "--push", "-t", f"{proxy.host}/rr/copy:1", str(ctx))
    got["push-to-second-repository"] = traffic(proxy.requests)
    assert got == {scenario: _expected(scenario) for scenario in DIFFERS}
