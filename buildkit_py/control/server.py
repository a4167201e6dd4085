"""The ``bkpy.control.v1.Control`` service over one long-lived builder core."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn

import grpc

from buildkit_py import __version__
from buildkit_py.api import control_pb2 as pb
from buildkit_py.api import control_pb2_grpc as pb_grpc
from buildkit_py.api import prune_filters
from buildkit_py.api.usage import PruneOptions
from buildkit_py.api.wire import (
    SESSION_ID_KEY,
    error_trailer,
    event_to_pb,
    prune_from_pb,
    usage_to_pb,
)
from buildkit_py.api.workers import GCRuleInfo
from buildkit_py.builder.core import Builder
from buildkit_py.builder.gc import BuildGate, disk_usage, prune
from buildkit_py.builder.gc_policy import collect, resolve_rules
from buildkit_py.builder.history_store import HistoryStore, check_ref
from buildkit_py.builder.worker_info import local_worker_info
from buildkit_py.control.contexts import ContextCache
from buildkit_py.control.solve import run_remote_build
from buildkit_py.errors import UsageError, UserError
from buildkit_py.session.daemon import DaemonSession, SessionRegistry
from buildkit_py.solver.cancel import CancelToken
from buildkit_py.solver.progress import ProgressEvent

_log = logging.getLogger(__name__)

STATUS_LINGER = 60.0  # seconds a finished build's events wait for a late Status call
GC_INTERVAL = 60.0


class ProgressChannel:
    """Every event of one build, kept until its Status stream has read them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._events: list[ProgressEvent] = []
        self.done_at: float | None = None
        self.readers = 0

    def publish(self, ev: ProgressEvent) -> None:
        with self._cond:
            self._events.append(ev)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.done_at = time.time()
            self._cond.notify_all()

    def batches(self, active: grpc.ServicerContext) -> Iterator[list[ProgressEvent]]:
        pos = 0
        while True:
            with self._cond:
                if len(self._events) == pos and self.done_at is None:
                    self._cond.wait(timeout=1.0)
                batch = self._events[pos:]
                done = self.done_at is not None
            pos += len(batch)
            if batch:
                yield batch
            if (done and pos == len(self._events)) or not active.is_active():
                return


class ProgressChannels:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channels: dict[str, ProgressChannel] = {}

    def get(self, ref: str) -> ProgressChannel:
        now = time.time()
        with self._lock:
            for key, ch in list(self._channels.items()):
                if ch.done_at is not None and now - ch.done_at > STATUS_LINGER:
                    del self._channels[key]
            found = self._channels.get(ref)
            if found is None:
                found = self._channels[ref] = ProgressChannel()
            return found

    def drop(self, ref: str) -> None:
        with self._lock:
            self._channels.pop(ref, None)


class ControlService(pb_grpc.ControlServicer):
    def __init__(self, builder: Builder) -> None:
        self.builder = builder
        self.root = builder.root
        self.sessions = SessionRegistry()
        self.progress = ProgressChannels()
        self.contexts = ContextCache(self.root / "control" / "contexts")
        self.gate = BuildGate()
        self._last_gc = 0.0
        self._gc_lock = threading.Lock()
        self._gc_timer: threading.Timer | None = None
        self._gc_stopped = False
        self._gc_thread: threading.Thread | None = None
        # a buildkitd.toml's GC rules, sizes resolved against this disk once, as buildkitd
        self.gc_rules = resolve_rules(builder.config.gc, builder.root)

    # ---------------------------------------------------------------- builds

    def Solve(self, request: pb.SolveRequest, context: grpc.ServicerContext) -> pb.SolveResponse:
        ref = request.ref or uuid.uuid4().hex
        channel = self.progress.get(ref)
        workdir = self.root / "control" / "builds" / uuid.uuid4().hex
        # A client that goes away cancels its own build only: steps shared with other
        # builds keep running for them (the solver detaches this build from them).
        cancel = CancelToken()
        context.add_callback(lambda: cancel.cancel("client disconnected"))
        try:
            session = self.sessions.wait(request.session_id)
            with self.gate.build():
                outcome = run_remote_build(self.builder, request, session, self.contexts,
                                           workdir, channel.publish, cancel)
            return pb.SolveResponse(image_id=outcome.image_id or "",
                                    metadata_json=json.dumps(outcome.metadata),
                                    ran=outcome.ran, cached=outcome.cached,
                                    warnings=outcome.warnings)
        except UserError as err:
            self._abort(context, err.render(), err.exit_code)
        except Exception as err:
            _log.exception("build %s failed", ref)
            self._abort(context, f"ERROR: internal error in bkpyd: {type(err).__name__}: {err}"
                        "\nhint: see the daemon's log", 1)
        finally:
            channel.close()
            shutil.rmtree(workdir, ignore_errors=True)
            self._maybe_gc()

    @staticmethod
    def _abort(context: grpc.ServicerContext, text: str, code: int) -> NoReturn:
        context.set_trailing_metadata(error_trailer(text, code))
        # the status detail is the ERROR line (hints may follow it)
        errors = [ln for ln in text.splitlines() if ln.startswith("ERROR: ")]
        context.abort(grpc.StatusCode.UNKNOWN, errors[-1] if errors else "build failed")
        raise AssertionError("unreachable")

    def Status(self, request: pb.StatusRequest,
               context: grpc.ServicerContext) -> Iterator[pb.StatusResponse]:
        channel = self.progress.get(request.ref)
        for batch in channel.batches(context):
            yield pb.StatusResponse(events=[event_to_pb(e) for e in batch])
        if channel.done_at is not None:
            self.progress.drop(request.ref)

    def Session(self, request_iterator: Iterator[pb.SessionMessage],
                context: grpc.ServicerContext) -> Iterator[pb.SessionMessage]:
        sid = ""
        for key, value in context.invocation_metadata():
            if key == SESSION_ID_KEY:
                sid = str(value)
        if not sid:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"missing {SESSION_ID_KEY} metadata")
        session = DaemonSession(sid)
        self.sessions.add(session)
        context.add_callback(session.close)
        threading.Thread(target=session.consume, args=(request_iterator,), daemon=True,
                         name=f"session-{sid[:8]}").start()
        try:
            yield from session.outgoing()
        finally:
            session.close()
            self.sessions.remove(session)

    # ---------------------------------------------------------------- cache

    def DiskUsage(self, request: pb.DiskUsageRequest,
                  context: grpc.ServicerContext) -> pb.DiskUsageResponse:
        try:
            items = disk_usage(self.builder, request.verify) + self.contexts.usage()
        except UserError as err:
            self._abort(context, err.render(), err.exit_code)
        except Exception as err:
            _log.exception("disk usage failed")
            self._abort(context, f"ERROR: bkpyd could not compute disk usage: {err}", 1)
        return pb.DiskUsageResponse(records=[usage_to_pb(i) for i in items])

    def Prune(self, request: pb.PruneRequest,
              context: grpc.ServicerContext) -> Iterator[pb.UsageRecord]:
        opts = prune_from_pb(request)
        try:
            with self.gate.prune():
                items = list(prune(self.builder, opts))
                if not opts.corrupt:
                    filters = prune_filters.parse(opts.filters)
                    items += self.contexts.prune(  # the clients' context copies
                        opts.keep_duration, lambda item: prune_filters.matches(
                            filters, kind="source.local", result_id=item.id,
                            description=item.description, in_use=item.in_use))
        except UserError as err:
            self._abort(context, err.render(), err.exit_code)
        except Exception as err:
            _log.exception("prune failed")
            self._abort(context, f"ERROR: bkpyd could not prune: {err}", 1)
        for item in items:
            yield usage_to_pb(item)

    def start_gc(self) -> None:
        """A GC run now (bkpyd starts with one, as buildkitd does)."""
        self._maybe_gc()

    def stop_gc(self) -> None:
        """No GC from now on (the daemon is shutting down)."""
        with self._gc_lock:
            self._gc_stopped = True
            if self._gc_timer is not None:
                self._gc_timer.cancel()
            thread = self._gc_thread
        if thread is not None:
            thread.join()  # the builder closes after this: let a running GC finish first

    def _deferred_gc(self) -> None:
        with self._gc_lock:
            self._gc_timer = None
        self._maybe_gc()

    def _maybe_gc(self) -> None:
        """The configured GC policy, at most once a minute, when no build runs: a
        buildkitd.toml's rules (see builder/gc_policy.py), else bkpy's own [gc]."""
        policy = self.builder.config.gc
        if not self.gc_rules and policy.keep_storage is None and policy.keep_duration is None:
            return

        def run() -> None:
            opts = PruneOptions(keep_duration=policy.keep_duration,
                                keep_storage=policy.keep_storage)
            try:
                with self.gate.prune():
                    items = (collect(self.builder, self.gc_rules) if self.gc_rules
                             else prune(self.builder, opts))
                    removed = list(items)
                freed = sum(i.size for i in removed)
                records = sum(1 for i in removed if i.record_type != "content")
                _log.log(logging.INFO if removed else logging.DEBUG,
                         "gc: %d cache records removed, %d bytes freed", records, freed)
            except Exception:
                _log.exception("gc failed")

        now = time.time()
        with self._gc_lock:
            if self._gc_stopped or not self.gate.idle:
                return  # a build runs: its end asks again
            wait = self._last_gc + GC_INTERVAL - now
            if wait > 0:
                # as buildkitd's throttle: a request within the minute runs at its end
                if self._gc_timer is None:
                    self._gc_timer = threading.Timer(wait, self._deferred_gc)
                    self._gc_timer.daemon = True
                    self._gc_timer.start()
                return
            self._last_gc = now
            # known before the lock is let go, so that stop_gc() waits for it
            thread = self._gc_thread = threading.Thread(target=run, daemon=True, name="gc")
        thread.start()

    # ---------------------------------------------------------------- info

    # ---------------------------------------------------------------- history

    def History(self, request: pb.HistoryRequest,
                context: grpc.ServicerContext) -> Iterator[pb.HistoryChunk]:
        store = HistoryStore(self.builder.root)
        try:
            if request.op == "list":
                for record in store.records():
                    yield pb.HistoryChunk(record_json=json.dumps(record))
                return
            check_ref(request.ref)
            if request.op == "read":
                for chunk in store.read_chunks(request.ref, request.path):
                    yield pb.HistoryChunk(data=chunk)
            elif request.op == "remove":
                store.remove(request.ref)
            elif request.op == "export":
                with tempfile.TemporaryDirectory(dir=self.builder.root) as tmp:
                    bundle = Path(tmp) / "bundle.tar.gz"
                    store.export(request.ref, bundle)
                    with open(bundle, "rb") as f:
                        while chunk := f.read(1 << 20):
                            yield pb.HistoryChunk(data=chunk)
            else:
                raise UsageError(f"unknown history operation {request.op!r}")
        except UserError as err:
            self._abort(context, err.render(), err.exit_code)

    def ListWorkers(self, request: pb.ListWorkersRequest,
                    context: grpc.ServicerContext) -> pb.ListWorkersResponse:
        info = local_worker_info(self.builder.config, [
            GCRuleInfo(r.all, r.filters, r.keep_duration, r.reserved_space, r.max_used_space,
                       r.min_free_space) for r in self.gc_rules])
        gc = self.builder.config.gc
        policy = pb.GCPolicy()
        if gc.keep_storage is not None:
            policy.keep_storage = gc.keep_storage
        if gc.keep_duration is not None:
            policy.keep_duration = gc.keep_duration
        return pb.ListWorkersResponse(workers=[pb.WorkerRecord(
            id=info.id, labels=info.labels, platforms=info.platforms,
            emulated_platforms=info.emulated, gc_policy=policy, gc_rules=[pb.GCRule(
                all=r.all, filters=r.filters, keep_duration=r.keep_duration,
                reserved_space=r.reserved_space, max_used_space=r.max_used_space,
                min_free_space=r.min_free_space) for r in info.gc_rules])])

    def Info(self, request: pb.InfoRequest, context: grpc.ServicerContext) -> pb.InfoResponse:
        return pb.InfoResponse(package="buildkit-py", version=__version__, revision="")


def make_server(builder: Builder, max_workers: int = 96) -> tuple[Any, ControlService]:
    server = grpc.server(ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
                         options=[("grpc.max_receive_message_length", 16 << 20),
                                  ("grpc.max_send_message_length", 16 << 20)])
    service = ControlService(builder)
    pb_grpc.add_ControlServicer_to_server(service, server)
    return server, service
