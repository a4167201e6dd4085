"""Recording one build into the history (:mod:`history_store`) while it runs.

The recorder sits in front of the build's progress sink: every event goes on to the
caller unchanged and is also written down. Steps are numbered as the plain progress
numbers them (#1, #2, ... in order of first appearance), a step's output goes to its own
log file as it comes (whole: nothing is clipped or dropped), and the record is written
twice: as ``running`` when the build starts (so a build killed midway is still listed),
and complete when it ends, with its status, error and failing step.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import IO, Any

from buildkit_py import deferred
from buildkit_py.api.outcome import BuildOutcome
from buildkit_py.api.request import BuildRequest
from buildkit_py.builder.history_store import (
    DOCKERFILE,
    EVENTS,
    FAILED,
    FAILED_TAR,
    LOGS,
    RECORD,
    HistoryPolicy,
    HistoryStore,
    log_name,
    new_ref,
)
from buildkit_py.errors import UserError
from buildkit_py.solver.progress import (
    ProgressEvent,
    ProgressSink,
    VertexCached,
    VertexCompleted,
    VertexFailed,
    VertexLog,
    VertexStarted,
)
from buildkit_py.worker.session import FailedStep


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)


def request_summary(req: BuildRequest) -> dict[str, Any]:
    """What ``history inspect`` shows of the request (no secret values: only ids)."""
    return {
        "context": req.context_url or (str(req.context) if req.context else None),
        "dockerfile": req.dockerfile_name,
        "target": req.target,
        "platforms": list(req.platforms),
        "build_args": dict(req.build_args),
        "labels": dict(req.labels),
        "tags": list(req.tags),
        "outputs": [o.type for o in req.outputs],
        "no_cache": req.no_cache,
        "secrets": [s.id for s in req.secrets],
        "ssh": [s.id for s in req.ssh],
    }


# A failed step that changed more than this keeps no files (writing them would make the
# failure slow and the history large); its post-mortem then says so.
FAILED_STEP_MAX = 1 << 30


class _TooLarge(Exception):
    pass


class _Capped:
    """A writer that refuses to grow past ``limit`` bytes."""

    def __init__(self, f: IO[bytes], limit: int) -> None:
        self._f = f
        self._left = limit

    def write(self, data: bytes) -> int:
        self._left -= len(data)
        if self._left < 0:
            raise _TooLarge
        return self._f.write(data)


class BuildRecorder:
    """Writes one build's folder; use :meth:`sink` as the build's progress."""

    def __init__(self, store: HistoryStore, req: BuildRequest) -> None:
        self.ref = new_ref()
        self.dir = store.path(self.ref)
        (self.dir / LOGS).mkdir(parents=True)
        (self.dir / DOCKERFILE).write_bytes(req.dockerfile_data)
        self.record: dict[str, Any] = {
            "ref": self.ref, "status": "running", "started_at": time.time(),
            "request": request_summary(req),
        }
        _write_json(self.dir / RECORD, self.record)
        self._events = open(self.dir / EVENTS, "a", encoding="utf-8")
        self._lock = threading.Lock()
        self._index: dict[str, int] = {}
        self._steps: dict[int, dict[str, Any]] = {}
        self._logs: dict[int, IO[bytes]] = {}

    def sink(self, forward: ProgressSink) -> ProgressSink:
        def record_and_forward(event: ProgressEvent) -> None:
            try:
                self._record(event)
            except OSError:
                pass  # a full disk must not fail the build: the history is a by-product
            forward(event)

        return record_and_forward

    def _step(self, digest: str, name: str) -> tuple[int, dict[str, Any]]:
        index = self._index.get(digest)
        if index is None:
            index = self._index[digest] = len(self._index) + 1
            self._steps[index] = {"index": index, "digest": digest, "name": name}
        step = self._steps[index]
        if name and not step.get("name"):
            step["name"] = name
        return index, step

    def _record(self, event: ProgressEvent) -> None:
        with self._lock:
            index, step = self._step(event.digest, getattr(event, "name", ""))
            line: dict[str, Any]
            if isinstance(event, VertexLog):
                f = self._logs.get(index)
                if f is None:
                    f = self._logs[index] = open(self.dir / log_name(index), "ab")
                offset = f.tell()
                f.write(event.data)
                step["log_bytes"] = offset + len(event.data)
                line = {"type": "VertexLog", "digest": event.digest, "stream": event.stream,
                        "timestamp": event.timestamp, "offset": offset,
                        "length": len(event.data)}
            else:
                line = {"type": type(event).__name__, **asdict(event)}
                if isinstance(event, VertexStarted):
                    step["started"] = event.started
                elif isinstance(event, VertexCached):
                    step["cached"] = True
                elif isinstance(event, VertexCompleted):
                    step.update(started=event.started, completed=event.completed)
                elif isinstance(event, VertexFailed):
                    step.update(started=event.started, completed=event.completed,
                                error=event.error, cancelled=event.cancelled)
            self._events.write(json.dumps(line) + "\n")
            self._events.flush()

    def keep_failed_step(self, step: FailedStep) -> None:
        """Keep the first failed RUN step for ``bkpy history debug``: how it ran and what it
        changed (an uncompressed layer tar, ``failed/rootfs.tar``)."""
        with self._lock:
            if "failed_state" in self.record:
                return
            self.record["failed_state"] = {}  # claimed: a parallel failure keeps nothing
        folder = self.dir / FAILED
        folder.mkdir(exist_ok=True)
        state = {k: v for k, v in asdict(step).items() if k != "write_diff"}
        try:
            with open(folder / FAILED_TAR, "wb") as f:
                step.write_diff(_Capped(f, FAILED_STEP_MAX))
        except _TooLarge:
            (folder / FAILED_TAR).unlink()
            state["files_dropped"] = f"over {FAILED_STEP_MAX >> 20} MiB of changes"
        with self._lock:
            self.record["failed_state"] = state

    def finish(self, outcome: BuildOutcome | None, error: BaseException | None) -> None:
        with self._lock:
            for f in self._logs.values():
                f.close()
            self._events.close()
            steps = [self._steps[i] for i in sorted(self._steps)]
            failed = next((s for s in steps if s.get("error") and not s.get("cancelled")),
                          None)
            done = time.time()
            self.record.update(
                completed_at=done,
                duration=done - float(self.record["started_at"]),
                steps=steps,
                ran=sum(1 for s in steps
                        if "completed" in s and not s.get("cached") and not s.get("error")),
                cached=sum(1 for s in steps if s.get("cached")),
            )
            if error is None:
                self.record["status"] = "completed"
            elif isinstance(error, KeyboardInterrupt | SystemExit):
                self.record["status"] = "canceled"
            else:
                self.record["status"] = "failed"
                self.record["error"] = (error.render() if isinstance(error, UserError)
                                        else f"{type(error).__name__}: {error}")
            if failed is not None:
                self.record["failed_step"] = {"index": failed["index"],
                                              "name": failed.get("name", "")}
            if outcome is not None:
                self.record.update(image_id=outcome.image_id, warnings=outcome.warnings,
                                   ran=outcome.ran or self.record["ran"],
                                   cached=outcome.cached or self.record["cached"])
            _write_json(self.dir / RECORD, self.record)


FailedStepHook = Callable[[FailedStep], None]


def recorded(store: HistoryStore, policy: HistoryPolicy, req: BuildRequest,
             progress: ProgressSink,
             run: Callable[[ProgressSink, FailedStepHook | None], BuildOutcome]
             ) -> BuildOutcome:
    """Run ``run`` (a build, given the progress sink and who keeps a failed step) with its
    progress recorded as a history entry, then apply the retention policy. Lint-only and
    other ``--call`` requests are not builds: not recorded."""
    if req.call != "build":
        return run(progress, None)
    try:
        recorder = BuildRecorder(store, req)
    except OSError:
        return run(progress, None)  # no history (read-only or full disk): still build
    outcome: BuildOutcome | None = None
    try:
        outcome = run(recorder.sink(progress), recorder.keep_failed_step)
    except BaseException as err:
        recorder.finish(None, err)
        raise
    else:
        recorder.finish(outcome, None)
        # the client names the build by it (buildx.build.ref in --metadata-file)
        outcome.metadata["buildx.build.ref"] = recorder.ref
    finally:
        # after the answer when a served command can (see deferred)
        deferred.later(partial(store.apply, policy, keep=recorder.ref))
    return outcome
