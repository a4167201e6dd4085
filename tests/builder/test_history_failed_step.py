"""The history keeps a failed step's changes, unless they are too large to keep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildkit_py.api.request import BuildRequest
from buildkit_py.builder import history_record
from buildkit_py.builder.history_record import BuildRecorder
from buildkit_py.builder.history_store import FAILED, FAILED_TAR, RECORD, HistoryStore
from buildkit_py.worker.session import FailedStep


def _step(chunks: list[bytes]) -> FailedStep:
    def write(f: object) -> None:
        for c in chunks:
            f.write(c)  # type: ignore[attr-defined]

    return FailedStep(name="[2/2] RUN x", parent="layer-1", args=["/bin/sh", "-c", "x"],
                      env=["A=1"], cwd="/w", user="1000", hostname="h", platform=None,
                      network="none", write_diff=write)


def _recorder(tmp_path: Path) -> BuildRecorder:
    return BuildRecorder(HistoryStore(tmp_path), BuildRequest(context=None, dockerfile=None,
                                                              dockerfile_data=b"FROM x\n"))


def test_the_first_failed_step_is_kept_with_its_files(tmp_path: Path) -> None:
    rec = _recorder(tmp_path)
    rec.keep_failed_step(_step([b"a" * 10, b"b" * 10]))
    rec.keep_failed_step(_step([b"later"]))  # only the first failure is kept
    rec.finish(None, RuntimeError("boom"))
    record = json.loads((rec.dir / RECORD).read_text())
    assert record["failed_state"]["cwd"] == "/w" and record["failed_state"]["user"] == "1000"
    assert (rec.dir / FAILED / FAILED_TAR).read_bytes() == b"a" * 10 + b"b" * 10


def test_a_step_that_changed_too_much_keeps_no_files(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history_record, "FAILED_STEP_MAX", 15)
    rec = _recorder(tmp_path)
    rec.keep_failed_step(_step([b"a" * 10, b"b" * 10]))
    rec.finish(None, RuntimeError("boom"))
    record = json.loads((rec.dir / RECORD).read_text())
    assert "files_dropped" in record["failed_state"]
    assert not (rec.dir / FAILED / FAILED_TAR).exists()
