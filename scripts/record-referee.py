#!/usr/bin/env python3
"""Record the differential corpus (testdata/referee/*/expected.json) from the referee: the
newest BuildKit, built and started by ../shared/tools/buildkit-referee, driven through buildx.

    scripts/record-referee.py [--label TEXT] [--jobs N] [CASE...]

Each case is built with ``docker-buildx build --builder referee --no-cache`` and exactly the
arguments the test suite gives ``bkpy build`` (tests/referee/corpus.py); its observation
(tests/referee/observe.py) replaces the case's expected.json. Needs the referee running:
``buildkit-referee build BUILDKIT_DIR BUILDX_DIR && buildkit-referee start``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.images import write_busybox_layout  # noqa: E402
from tests.referee.corpus import Case, all_cases, invocation  # noqa: E402
from tests.referee.observe import observe  # noqa: E402

REFEREE_TOOL = REPO.parent / "shared" / "tools" / "buildkit-referee"
BUILDER = "referee"


class RecordError(Exception):
    """A failure the user can act on; printed without a traceback."""


def referee_env() -> dict[str, str]:
    """The environment with the referee's buildx and buildctl first on PATH."""
    tool = os.environ.get("BUILDKIT_REFEREE", str(REFEREE_TOOL))
    if not Path(tool).exists():
        raise RecordError(f"{tool} not found (set BUILDKIT_REFEREE to the referee tool)")
    status = subprocess.run([tool, "status"], capture_output=True, text=True)
    if status.returncode != 0:
        raise RecordError("the referee is not running: run `buildkit-referee build "
                          "BUILDKIT_DIR BUILDX_DIR && buildkit-referee start` first")
    exports = subprocess.run([tool, "env"], capture_output=True, text=True, check=True).stdout
    env = dict(os.environ)
    out = subprocess.run(["bash", "-c", f"{exports}\nenv -0"], capture_output=True,
                         check=True, env=env).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def ensure_builder(env: dict[str, str]) -> None:
    ls = subprocess.run(["docker-buildx", "inspect", BUILDER], capture_output=True, env=env)
    if ls.returncode == 0:
        return
    subprocess.run(["docker-buildx", "create", "--name", BUILDER, "--driver", "remote",
                    env["BUILDKIT_HOST"]], check=True, capture_output=True, env=env)


def record_case(case: Case, base: Path, env: dict[str, str], label: str) -> str:
    with tempfile.TemporaryDirectory(prefix=f"referee-{case.name}-") as tmp:
        inv = invocation(case, Path(tmp), base)
        p = subprocess.run(["docker-buildx", "build", "--builder", BUILDER, "--no-cache",
                            *inv.args], capture_output=True, text=True,
                           env={**env, **inv.env}, timeout=600)
        obs = observe(p.returncode, p.stderr, inv.output, case.platforms,
                      case.source_date_epoch is not None)
    if p.returncode != 0 and not obs["error"]:
        raise RecordError(f"{case.name}: buildx failed without an error line:\n{p.stderr}")
    doc = {"referee": label, **obs}
    case.expected_path.write_text(json.dumps(doc, indent=1) + "\n")
    return f"exit {p.returncode}" + (f": {obs['error']}" if p.returncode else "")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("cases", nargs="*", help="case names (default: all)")
    ap.add_argument("--label", default="newest BuildKit (buildkit-referee)",
                    help="what recorded them, e.g. 'buildkit 73ed6825c, buildx 461836ba0'")
    ap.add_argument("--jobs", type=int, default=4)
    args = ap.parse_args(argv)
    cases = {c.name: c for c in all_cases()}
    unknown = [n for n in args.cases if n not in cases]
    if unknown:
        raise RecordError(f"unknown case(s): {', '.join(unknown)}")
    chosen = [cases[n] for n in args.cases] if args.cases else list(cases.values())
    env = referee_env()
    if shutil.which("docker-buildx", path=env["PATH"]) is None:
        raise RecordError("docker-buildx is not built: run `buildkit-referee build ...`")
    ensure_builder(env)
    with tempfile.TemporaryDirectory(prefix="referee-base-") as tmp:
        base = write_busybox_layout(Path(tmp) / "busybox", ("amd64", "arm64"))
        with ThreadPoolExecutor(args.jobs) as pool:
            futures = {c.name: pool.submit(record_case, c, base, env, args.label)
                       for c in chosen}
            for name, fut in futures.items():
                print(f"{name}: {fut.result()}", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except RecordError as e:
        print(f"record-referee: {e}", file=sys.stderr)
        sys.exit(1)
