"""The differential corpus: every case in testdata/referee is built with ``bkpy build`` and must
give what the newest BuildKit gave (expected.json, recorded by scripts/record-referee.py): the
same files, modes and owners, the same image config, the same error, and under
``SOURCE_DATE_EPOCH`` the same image ID and diff_ids. A failure lists every difference."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import Bkpy, make_runner
from tests.images import write_busybox_layout
from tests.referee.corpus import Case, all_cases, invocation
from tests.referee.observe import compare, observe

CASES = all_cases()


@pytest.fixture(scope="module")
def base_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_busybox_layout(tmp_path_factory.mktemp("referee-base") / "busybox",
                                ("amd64", "arm64"))


@pytest.fixture(scope="module")
def bkpy(tmp_path_factory: pytest.TempPathFactory) -> Bkpy:
    """One state root for every case: cases differ in Dockerfile or context, so a cache hit
    between them is a correct hit, as it would be for a user."""
    return make_runner(tmp_path_factory.mktemp("referee-state"))


def differences(bkpy: Bkpy, case: Case, base: Path, work: Path) -> list[str]:
    inv = invocation(case, work, base)
    run = bkpy("build", *inv.args, check=False, env=inv.env)
    expected = {k: v for k, v in case.expected().items() if k != "referee"}
    actual = observe(run.code, run.err, inv.output, case.platforms,
                     case.source_date_epoch is not None)
    found = compare(expected, actual)
    if found and run.code != 0 and expected.get("exit") == 0:
        found.append(f"bkpy's output:\n{run.err[-3000:]}")
    return found


@pytest.mark.e2e
@pytest.mark.root
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bkpy_gives_what_buildkit_gave(bkpy: Bkpy, base_layout: Path, case: Case,
                                       tmp_path: Path) -> None:
    found = differences(bkpy, case, base_layout, tmp_path)
    kept = case.inputs.get("differs")
    if kept:
        assert found == kept["lines"], (
            f"{case.name}: the known difference ({kept['reason']}) changed; now:\n  "
            + "\n  ".join(found))
    else:
        assert not found, f"{case.name} differs from BuildKit:\n  " + "\n  ".join(found)


def test_every_case_is_recorded() -> None:
    missing = [c.name for c in CASES if not c.expected_path.is_file()]
    assert not missing, f"run scripts/record-referee.py {' '.join(missing)}"
    assert len(CASES) >= 150
