"""History retention decides by four fields of each record, remembered in
``history/.retention.json`` under the identity of the ``record.json`` they came from: the
newest entries are kept, a record replaced since is read again, and a torn index only costs
the reads it would have saved. Plain folders, as builds leave them."""

from __future__ import annotations

import json
import os
from pathlib import Path

from buildkit_py.builder.history_store import RECORD, RETENTION_INDEX, HistoryStore
from buildkit_py.config import HistoryConfig


def _write(store: HistoryStore, ref: str, started: float, status: str = "completed") -> None:
    folder = store.path(ref)
    folder.mkdir(parents=True, exist_ok=True)
    record = {"ref": ref, "status": status, "started_at": started,
              "completed_at": None if status == "running" else started + 1,
              "padding": "x" * 2000}
    tmp = folder / (RECORD + ".tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(folder / RECORD)  # as builds write it: replaced, never rewritten in place


def _refs(store: HistoryStore) -> list[str]:
    return [r["ref"] for r in store.summaries()]


def test_retention_keeps_the_newest_and_remembers_what_it_read(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    for i in range(5):
        _write(store, f"ref{i}", 1000.0 + i)
    _write(store, "running", 900.0, status="running")
    removed = store.apply(HistoryConfig(max_entries=3, max_age=0), now=2000.0)
    assert sorted(removed) == ["ref0", "ref1"]  # the oldest; a running build is kept
    assert _refs(store) == ["ref4", "ref3", "ref2", "running"]
    index = json.loads((store.dir / RETENTION_INDEX).read_text())
    assert sorted(index) == ["ref2", "ref3", "ref4", "running"]
    assert [r["ref"] for r in store.records()] == _refs(store)  # the same view as records

    # the index answers for an unchanged record file: garbage written in place at the same
    # size, with its mtime put back, is not even read
    path = store.path("ref3") / RECORD
    st = path.stat()
    with open(path, "r+b") as f:
        f.write(b"!" * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _refs(store) == ["ref4", "ref3", "ref2", "running"]


def test_a_replaced_record_is_read_again(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    _write(store, "new", 1500.0)
    _write(store, "build", 1000.0, status="running")
    assert store.apply(HistoryConfig(max_entries=1, max_age=0), now=2000.0) == []
    _write(store, "build", 1000.0)  # the build ended: its record is replaced
    assert store.apply(HistoryConfig(max_entries=1, max_age=0), now=2000.0) == ["build"]
    assert _refs(store) == ["new"]


def test_a_torn_or_foreign_index_only_costs_reads(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    for i in range(3):
        _write(store, f"ref{i}", 1000.0 + i)
    for junk in (b'{"ref0": {"stamp": [1, 2', b"[1, 2, 3]",
                 b'{"ref0": {"stamp": "x", "status": "running", "started_at": 9999}}'):
        (store.dir / RETENTION_INDEX).write_bytes(junk)
        assert _refs(store) == ["ref2", "ref1", "ref0"]
    assert store.apply(HistoryConfig(max_entries=0, max_age=60), now=1061.5) == ["ref0"]
    assert _refs(store) == ["ref2", "ref1"]
