"""The remote client: builds on one ``bkpyd`` over gRPC, serving the build's session.

For one build the client opens three calls on one channel: ``Session`` (the daemon asks
it for context files, secrets, ssh agent connections, and hands it exporter output:
:mod:`buildkit_py.session.client`), ``Status`` (progress events, fed to the same display
as an embedded build) and ``Solve``. Where the daemon's results land is decided here:
exporter output by :mod:`buildkit_py.client.outputs`, ``--iidfile`` and
``--metadata-file`` on this machine.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import grpc

from buildkit_py.api import control_pb2 as pb
from buildkit_py.api.outcome import BuildOutcome
from buildkit_py.api.request import BuildRequest
from buildkit_py.api.tls import TLSFiles
from buildkit_py.api.usage import PruneOptions, UsageItem
from buildkit_py.api.wire import SESSION_ID_KEY, event_from_pb, prune_to_pb, usage_from_pb
from buildkit_py.api.workers import GCRuleInfo, WorkerInfo
from buildkit_py.client.connection import Connection
from buildkit_py.client.outputs import output_opener
from buildkit_py.errors import UserError
from buildkit_py.session.client import (
    ClientSession,
    context_id,
    lent_caches,
    lent_directories,
)
from buildkit_py.session.filesync import ContextSender
from buildkit_py.solver.progress import ProgressSink
from buildkit_py.worker.transfer_size import dockerfile_size


@dataclass
class RemoteClient:
    """A client of one ``bkpyd`` endpoint."""

    endpoint: str
    tls: TLSFiles | None = None

    def __post_init__(self) -> None:
        self._conn = Connection(self.endpoint, self.tls)

    def close(self) -> None:
        self._conn.close()

    # ---------------------------------------------------------------- info

    def info(self, timeout: float | None = 10.0) -> dict[str, str]:
        try:
            resp = self._conn.stub.Info(pb.InfoRequest(), timeout=timeout)
        except grpc.RpcError as err:
            raise self._conn.error(err) from None
        return {"package": resp.package, "version": resp.version, "revision": resp.revision}

    def ping(self, timeout: float = 1.0) -> bool:
        try:
            self.info(timeout=timeout)
        except UserError:
            return False
        return True

    def workers(self) -> list[WorkerInfo]:
        try:
            resp = self._conn.stub.ListWorkers(pb.ListWorkersRequest(), timeout=30)
            version = self.info()["version"]
        except grpc.RpcError as err:
            raise self._conn.error(err) from None
        return [WorkerInfo(w.id, list(w.platforms), list(w.emulated_platforms),
                           dict(w.labels), version, [
                               GCRuleInfo(r.all, tuple(r.filters), r.keep_duration,
                                          r.reserved_space, r.max_used_space, r.min_free_space)
                               for r in w.gc_rules]) for w in resp.workers]

    # ---------------------------------------------------------------- cache

    def disk_usage(self, verify: bool = False) -> list[UsageItem]:
        try:
            # hashing every blob takes as long as reading the whole content store
            resp = self._conn.stub.DiskUsage(pb.DiskUsageRequest(verify=verify),
                                             timeout=None if verify else 300)
        except grpc.RpcError as err:
            raise self._conn.error(err) from None
        return [usage_from_pb(r) for r in resp.records]

    def prune(self, opts: PruneOptions) -> Iterator[UsageItem]:
        try:
            for r in self._conn.stub.Prune(prune_to_pb(opts)):
                yield usage_from_pb(r)
        except grpc.RpcError as err:
            raise self._conn.error(err) from None

    # ---------------------------------------------------------------- history

    def history(self, op: str, ref: str = "", path: str = "") -> Iterator[pb.HistoryChunk]:
        """The daemon's build history (see the History RPC)."""
        try:
            yield from self._conn.stub.History(pb.HistoryRequest(op=op, ref=ref, path=path),
                                               timeout=600)
        except grpc.RpcError as err:
            raise self._conn.error(err) from None

    # ---------------------------------------------------------------- builds

    def build(self, req: BuildRequest, progress: ProgressSink) -> BuildOutcome:
        senders = lent_directories(req)
        ref, session_id = uuid.uuid4().hex, uuid.uuid4().hex
        solve_req = _solve_request(req, ref, session_id, senders)
        stub = self._conn.stub
        session = ClientSession(req, {**senders, **lent_caches(req)}, output_opener(req))
        try:
            responses = stub.Session(session.requests(),
                                     metadata=((SESSION_ID_KEY, session_id),))
        except grpc.RpcError as err:
            raise self._conn.error(err) from None
        reader = threading.Thread(target=session.serve, args=(responses,), daemon=True,
                                  name="session")
        reader.start()
        status = stub.Status(pb.StatusRequest(ref=ref))

        def pump_status() -> None:
            try:
                for resp in status:
                    for e in resp.events:
                        ev = event_from_pb(e)
                        if ev is not None:
                            progress(ev)
            except grpc.RpcError:
                pass

        status_thread = threading.Thread(target=pump_status, daemon=True, name="status")
        status_thread.start()
        try:
            resp = stub.Solve(solve_req, wait_for_ready=False)
        except grpc.RpcError as err:
            raise self._conn.error(err) from None
        finally:
            status_thread.join(timeout=30)
            if status_thread.is_alive():
                status.cancel()
            session.close()
            responses.cancel()
            reader.join(timeout=30)
        outcome = BuildOutcome(image_id=resp.image_id or None,
                               metadata=json.loads(resp.metadata_json or "{}"),
                               ran=resp.ran, cached=resp.cached, warnings=list(resp.warnings))
        if req.iidfile is not None and outcome.image_id:
            req.iidfile.write_text(outcome.image_id)
        if req.metadata_file is not None:
            req.metadata_file.write_text(json.dumps(outcome.metadata, indent=2) + "\n")
        return outcome


def _solve_request(req: BuildRequest, ref: str, session_id: str,
                   senders: dict[str, ContextSender]) -> pb.SolveRequest:
    """``req`` as the daemon takes it: files stay behind, lent over the session."""
    build_args = dict(req.build_args)
    # as buildx does: SOURCE_DATE_EPOCH from the client's environment
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and "SOURCE_DATE_EPOCH" not in build_args:
        build_args["SOURCE_DATE_EPOCH"] = epoch
    ignore = senders["context"].ignore_patterns if "context" in senders else []
    rows = cols = 0
    if req.debug_shell:  # the daemon's shell gets our terminal's size
        # reason: the terminal helpers (termios, tty) are for the step debugger only
        from buildkit_py.executor.terminal import window_size

        rows, cols = window_size(0)
    return pb.SolveRequest(
        ref=ref, session_id=session_id, dockerfile=req.dockerfile_data,
        dockerfile_name=req.dockerfile.name if req.dockerfile else "Dockerfile",
        ignore_patterns=ignore, has_context=req.context is not None,
        tags=req.tags, target=req.target or "", platforms=req.platforms,
        build_args=build_args, build_contexts=req.build_contexts,
        secret_ids=[s.id for s in req.secrets], ssh_ids=[s.id for s in req.ssh],
        no_cache=req.no_cache, no_cache_filter=req.no_cache_filter, pull=req.pull,
        outputs=[pb.Output(type=o.type, attrs=o.attrs) for o in req.outputs],
        labels=req.labels, network=req.network, entitlements=req.entitlements,
        extra_hosts=[f"{name}={ip}" for name, ip in req.extra_hosts],
        shm_size=req.shm_size,
        ulimits=[f"{name}={soft}:{hard}" for name, soft, hard in req.ulimits],
        context_url=req.context_url or "",
        dockerfile_in_context=req.dockerfile_in_context or "",
        call=req.call, metadata_warnings=req.metadata_warnings,
        debug_shell=list(req.debug_shell or []), debug_on=req.debug_on,
        debug_rows=rows, debug_cols=cols,
        # measured here: the daemon never sees the file, only its bytes
        dockerfile_sent=dockerfile_size(req.dockerfile, req.dockerfile_data),
        cache_to=[pb.CacheSpec(attrs=c) for c in req.cache_to],
        cache_from=[pb.CacheSpec(attrs=c) for c in req.cache_from],
        want_iid=req.iidfile is not None, want_metadata=req.metadata_file is not None,
        local_dirs=[pb.LocalDir(name=name, context_id=context_id(name, s.root))
                    for name, s in senders.items()])
