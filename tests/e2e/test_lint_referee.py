"""``bkpy build --call check`` against what the newest BuildKit said for the same file.

Every directory under testdata/lint is one case (a positive and a negative one per rule,
plus the ``# check=`` options, ``BUILDKIT_DOCKERFILE_CHECK``, ``error=true``, targets);
expected.json was recorded from the referee's ``docker buildx build --call check`` by
tests/frontend/lint/record_referee.py. Both the text screen and the JSON document must
match, and so must the exit status and the ERROR line.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Bkpy
from tests.frontend.lint.cases import Case, all_cases, summary, unfill
from tests.images import write_busybox_layout
from tests.registry.fixtures import RegistryServer

CASES = all_cases()


@pytest.fixture(scope="module")
def arm64_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A registry holding ``busybox-arm64:latest``: one arm64 manifest, no index."""
    root = tmp_path_factory.mktemp("lint-registry")
    server = RegistryServer(root)
    try:
        layout = write_busybox_layout(root / "bb-arm64", ("arm64",))
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                        f"oci:{layout}", f"docker://{server.host}/busybox-arm64:latest"],
                       check=True)
        yield server.host
    finally:
        server.stop()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_check_matches_buildkit(case: Case, bkpy: Bkpy, tmp_path: Path,
                                request: pytest.FixtureRequest) -> None:
    registry = request.getfixturevalue("arm64_registry") if case.needs_registry else None
    ctx = case.materialize(tmp_path / "ctx", registry)
    expected = case.expected()
    text = bkpy("build", "--call", "check", *case.cli_args(), ".", cwd=ctx, check=False)
    assert "Traceback" not in text.err
    assert unfill(text.out, registry) == expected["text"]
    assert text.code == expected["exit"]
    errors = [line for line in text.err.splitlines() if line.startswith("ERROR: ")]
    assert unfill(errors[0] if errors else None, registry) == expected["error"]

    js = bkpy("build", "--call", "check,format=json", *case.cli_args(), ".", cwd=ctx,
              check=False)
    assert js.code == expected["json_exit"]
    doc = json.loads(js.out) if js.out.strip() else {}
    assert unfill(summary(doc), registry) == expected["json"]
