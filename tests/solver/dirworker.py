"""A small real worker for solver tests: ops write files into directories (no containers).

Results are directories under ``<store>/<id>``; ops are JSON dicts:

- ``{"kind": "write", "files": {path: text}, "sleep": s, "log": [lines], "tag": t}``:
  copy every input's tree into a new dir (later inputs win), then write ``files``.
  ``sleep`` waits (cancellably) before finishing; ``tag`` only names the op in counters.
- ``{"kind": "local", "dir": host_dir, "include": [paths]}``: a source; its key is the
  content checksum of exactly the included paths.
- ``{"kind": "copy", "src": path}``: inputs ``[base, source]``; copies ``src`` from the
  source onto the base. Keyed by the content of ``src`` in the source (content-based).
- ``{"kind": "fail", "log": [lines], "sleep": s}``: logs, then fails.
- ``{"kind": "multi", "files": [{...}, {...}]}``: one output per dict.
- ``"nocache_field"`` in any op is left out of the cache map (like proxy env).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from buildkit_py.errors import BuildError
from buildkit_py.solver.progress import STDERR, STDOUT
from buildkit_py.solver.vertex import Vertex
from buildkit_py.solver.worker import CacheMap, CacheMapDep, OpContext, Result


class DirResult:
    def __init__(self, worker: DirWorker, rid: str) -> None:
        self.worker = worker
        self._id = rid
        self.released = False

    @property
    def id(self) -> str:
        return self._id

    @property
    def path(self) -> Path:
        return self.worker.store / self._id

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    def release(self) -> None:
        assert not self.released, f"result {self._id} released twice"
        self.released = True
        with self.worker.lock:
            self.worker.live -= 1


def tree_digest(root: Path, paths: Sequence[str]) -> str:
    """sha256 over the selected files' relative names and bytes (never mtimes)."""
    h = hashlib.sha256()
    for rel in sorted(paths):
        p = root / rel
        files = sorted(p.rglob("*")) if p.is_dir() else [p]
        for f in files:
            if f.is_file():
                h.update(str(f.relative_to(root)).encode() + b"\0")
                h.update(f.read_bytes() + b"\0")
    return "sha256:" + h.hexdigest()


class DirHandler:
    def __init__(self, worker: DirWorker, vertex: Vertex) -> None:
        self.worker = worker
        self.vertex = vertex
        self.op: dict[str, Any] = vertex.op
        self.cancelled = threading.Event()

    @property
    def label(self) -> str:
        return str(self.op.get("tag") or self.vertex.name)

    def cache_map(self, ctx: OpContext) -> CacheMap:
        self.worker.count("cache_map", self.label)
        semantic = {k: v for k, v in self.op.items() if k != "nocache_field"}
        kind = self.op["kind"]
        if kind == "local":
            # Sources key on the content of exactly what they select.
            digest = tree_digest(Path(self.op["dir"]), self.op["include"])
            return CacheMap(digest)
        digest = "sha256:" + hashlib.sha256(
            json.dumps(semantic, sort_keys=True).encode()
        ).hexdigest()
        if kind == "copy":
            return CacheMap(digest, (CacheMapDep(), CacheMapDep(
                (self.op["src"],), lambda r, sels: tree_digest(r.path, sels))))  # type: ignore[attr-defined]
        return CacheMap(digest)

    def _sleep(self, ctx: OpContext) -> None:
        seconds = float(self.op.get("sleep", 0))
        if seconds and ctx.cancel.wait(seconds):
            self.worker.count("interrupted", self.label)
            ctx.cancel.raise_if_cancelled()
        gate = self.op.get("gate")
        if gate:
            event = self.worker.gates[gate]
            while not event.wait(0.01):
                ctx.cancel.raise_if_cancelled()

    def exec(self, ctx: OpContext, inputs: Sequence[Result]) -> list[Result]:
        self.worker.count("exec", self.label)
        kind = self.op["kind"]
        for line in self.op.get("log", []):
            ctx.progress.log(STDOUT, line + "\n")
        self._sleep(ctx)
        self.worker.sessions_seen[self.label] = ctx.sessions()
        if kind == "fail":
            ctx.progress.log(STDERR, "boom\n")
            raise BuildError("process exited with code 1")
        if kind == "multi":
            return [self._write(inputs, files) for files in self.op["files"]]
        out = self.worker.new_result()
        if kind == "local":
            src = Path(self.op["dir"])
            for rel in self.op["include"]:
                _copy(src / rel, out.path / rel)
            return [out]
        if kind == "copy":
            base, source = inputs
            shutil.copytree(base.path, out.path, dirs_exist_ok=True)  # type: ignore[attr-defined]
            rel = self.op["src"]
            _copy(source.path / rel, out.path / rel)  # type: ignore[attr-defined]
            return [out]
        return [self._write(inputs, self.op.get("files", {}), out)]

    def _write(
        self, inputs: Sequence[Result], files: dict[str, str], out: DirResult | None = None
    ) -> DirResult:
        out = out or self.worker.new_result()
        for r in inputs:
            shutil.copytree(r.path, out.path, dirs_exist_ok=True)  # type: ignore[attr-defined]
        for rel, text in files.items():
            (out.path / rel).parent.mkdir(parents=True, exist_ok=True)
            (out.path / rel).write_text(text)
        return out

    def cancel(self) -> None:
        self.worker.count("cancel", self.label)
        self.cancelled.set()


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst, dirs_exist_ok=True)
    else:
        shutil.copy2(src, dst)


class DirWorker:
    def __init__(self, store: Path) -> None:
        self.store = store
        store.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.live = 0  # results handed out and not yet released
        self.gates: dict[str, threading.Event] = {}
        self.sessions_seen: dict[str, tuple[object, ...]] = {}

    def count(self, what: str, label: str) -> None:
        with self.lock:
            self.counts[(what, label)] += 1

    def total(self, what: str) -> int:
        with self.lock:
            return sum(n for (w, _), n in self.counts.items() if w == what)

    def new_result(self) -> DirResult:
        rid = uuid.uuid4().hex
        (self.store / rid).mkdir()
        with self.lock:
            self.live += 1
        return DirResult(self, rid)

    def resolve_op(self, vertex: Vertex) -> DirHandler:
        return DirHandler(self, vertex)

    def load_result(self, result_id: str) -> DirResult | None:
        self.count("load", result_id)
        if not (self.store / result_id).is_dir():
            return None
        with self.lock:
            self.live += 1
        return DirResult(self, result_id)


def wait_for(pred: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)
