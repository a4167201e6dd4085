"""Record what the referee (the newest BuildKit with buildx) prints when the builds of
:data:`tests.e2e.error_screens_cases.CASES` fail.

Run by hand: ``python3 -m tests.e2e.record_error_screens`` with the referee's buildkitd
running and a ``referee`` buildx builder (``/work/shared/tools/buildkit-referee``). Writes
``testdata/screens/error-screens.json``: each case's exit status, whether it showed
progress, and its error screen, the registry's address written ``{REGISTRY}``. The tests
never need BuildKit.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from tests.e2e.error_screens_cases import CASES, screen, shows_progress
from tests.images import push_layout, write_busybox_layout
from tests.registry.fixtures import RegistryServer

OUT = Path(__file__).resolve().parents[2] / "testdata" / "screens" / "error-screens.json"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "registry").mkdir()
        server = RegistryServer(work / "registry")
        try:
            layout = write_busybox_layout(work / "bb", ("amd64",))
            base = push_layout(layout, f"{server.host}/screens/busybox")
            found = {}
            for name, (dockerfile, args) in CASES.items():
                ctx = work / name
                ctx.mkdir()
                (ctx / "Dockerfile").write_text(dockerfile.replace("{BASE}", base))
                r = subprocess.run(
                    ["docker-buildx", "build", "--builder", "referee", *args,
                     "-o", f"type=local,dest={work / 'out'}", "."],
                    cwd=ctx, capture_output=True, text=True, timeout=300)
                found[name] = {"exit": r.returncode, "progress": shows_progress(r.stderr),
                               "screen": [
                    line.replace(server.host, "{REGISTRY}") for line in screen(r.stderr)]}
            OUT.write_text(json.dumps(found, indent=2) + "\n")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
