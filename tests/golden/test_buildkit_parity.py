"""The parity referee: every case in testdata/dockerfiles/build is built with ``bkpy build`` and
its image config, history, layer count and file metadata must match what real BuildKit produced
(expected.json, recorded by scripts/record-buildkit-golden.py). Comparison rules are in
tests/golden/expectations.py. A failure lists every differing field of the case."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import Bkpy, make_runner
from tests.golden.cases import Case, all_cases, prepare_context
from tests.golden.expectations import compare, record
from tests.golden.image_archive import read_oci_archive
from tests.images import write_busybox_layout

CASES = all_cases()


@pytest.fixture(scope="module")
def bkpy(tmp_path_factory: pytest.TempPathFactory) -> Bkpy:
    """One state root for all cases: they share the busybox base, and cache hits between
    cases are harmless because every case has its own Dockerfile and context."""
    root = tmp_path_factory.mktemp("golden-state")
    layout = write_busybox_layout(tmp_path_factory.mktemp("golden-busybox") / "layout")
    run = make_runner(root)
    run("image", "import", str(layout), "busybox:latest")
    return run


def build_case(bkpy: Bkpy, case: Case, work: Path) -> Path:
    ctx = prepare_context(case, work / "context")
    out = work / "image.tar"
    args = ["build", "--progress", "plain", "--network", "none", "-f", str(case.dockerfile),
            "--output", f"type=oci,dest={out}"]
    for key, value in case.build_args().items():
        args += ["--build-arg", f"{key}={value}"]
    if case.target():
        args += ["--target", str(case.target())]
    bkpy(*args, str(ctx))
    return out


@pytest.mark.e2e
@pytest.mark.root
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bkpy_build_matches_buildkit(bkpy: Bkpy, case: Case, tmp_path: Path) -> None:
    expected = case.expected()
    image = read_oci_archive(build_case(bkpy, case, tmp_path))
    actual = record(image, list(expected["check_paths"]))
    mismatches = compare(expected, actual)
    assert not mismatches, (f"{case.name} differs from {expected['source']}:\n  "
                            + "\n  ".join(mismatches))
