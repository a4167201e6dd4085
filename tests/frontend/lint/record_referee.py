"""Record what the referee (the newest BuildKit with buildx) says for every lint case.

Run by hand when cases change: ``python3 -m tests.frontend.lint.record_referee [NAME...]``
with the referee's buildkitd running and a ``referee`` buildx builder
(``/work/shared/tools/buildkit-referee``). Cases naming ``{REGISTRY}`` get a throwaway
registry holding ``busybox-arm64:latest`` (a single arm64 manifest). The test suite then
compares bkpy against the recorded files and never needs BuildKit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.frontend.lint.cases import Case, all_cases, summary, unfill
from tests.images import write_busybox_layout
from tests.registry.fixtures import RegistryServer


def push_arm64_busybox(registry: str, work: Path) -> None:
    layout = write_busybox_layout(work / "bb-arm64", ("arm64",))
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                    f"oci:{layout}", f"docker://{registry}/busybox-arm64:latest"], check=True)


def _buildx(ctx: Path, case: Case, call: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker-buildx", "build", "--builder", "referee", "--call", call,
                           *case.cli_args(), "."], cwd=ctx, capture_output=True, text=True,
                          timeout=300)


def record(case: Case, registry: str | None, work: Path) -> None:
    ctx = case.materialize(work / case.name, registry)
    text = _buildx(ctx, case, "check")
    js = _buildx(ctx, case, "check,format=json")
    doc = json.loads(js.stdout) if js.stdout.strip() else {}
    err = [line for line in text.stderr.splitlines() if line.startswith("ERROR: ")]
    expected = {"exit": text.returncode, "text": text.stdout,
                "json_exit": js.returncode, "json": summary(doc),
                "error": err[0] if err else None}
    (case.path / "expected.json").write_text(
        json.dumps(unfill(expected, registry), indent=2) + "\n")
    print(f"{case.name}: exit {text.returncode}, "
          f"{len(doc.get('warnings') or [])} warning(s)")


def main(names: list[str]) -> None:
    cases = [c for c in all_cases() if not names or c.name in names]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = None
        if any(c.needs_registry for c in cases):
            (work / "registry").mkdir()
            server = RegistryServer(work / "registry")
            push_arm64_busybox(server.host, work)
        try:
            for case in cases:
                record(case, server.host if server else None, work)
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
