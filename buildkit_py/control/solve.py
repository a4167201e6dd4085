"""One remote build on the daemon: sync the lent directories, build, send the outputs.

The builder core writes exporter output to paths on the machine that runs it, so the
daemon points every client-side destination (``local``/``tar``/``oci``/``docker``
dests, ``--cache-to type=local`` dests, ``--iidfile``, ``--metadata-file``) into a
private build directory and streams the results back over the session; the client writes
the real destinations. A ``--cache-from type=local`` directory is read from the client
file by file, when the import needs it (``session.daemon.LentLayout``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from buildkit_py.api import control_pb2 as pb
from buildkit_py.api.outcome import BuildOutcome
from buildkit_py.api.outputs import OutputSpec
from buildkit_py.api.request import BuildRequest, SecretSpec, SSHSpec
from buildkit_py.api.wire import lent_cache_name
from buildkit_py.builder.core import Builder
from buildkit_py.builder.history_record import recorded
from buildkit_py.builder.history_store import HistoryStore
from buildkit_py.control.contexts import ContextCache
from buildkit_py.control.deliveries import Delivery
from buildkit_py.errors import UsageError
from buildkit_py.session.daemon import DaemonSession, RemoteBuildSession, SSHForwarder
from buildkit_py.session.filesync import SyncStats
from buildkit_py.solver.progress import (
    ProgressEvent,
    ProgressSink,
    VertexFailed,
    VertexStarted,
)
from buildkit_py.units import parse_ulimit
from buildkit_py.worker.session import FailedStep
from buildkit_py.worker.transfer_size import listing, transfer_size

if TYPE_CHECKING:
    from buildkit_py.solver.cancel import CancelToken

_log = logging.getLogger(__name__)


def _safe_name(name: str) -> str:
    base = Path(name).name
    return base if base not in ("", ".", "..") else "Dockerfile"


def _ulimit(text: str) -> tuple[str, int, int]:
    """A client's ``NAME=SOFT:HARD``, checked again: the daemon trusts no client."""
    try:
        u = parse_ulimit(text)
    except ValueError as err:
        raise UsageError(f"invalid ulimit {text!r}: {err}") from None
    return (u.name, u.soft, u.hard)


def to_build_request(req: pb.SolveRequest, workdir: Path, local_dirs: dict[str, Path],
                     session_id: str) -> tuple[BuildRequest, list[Delivery]]:
    """The client's request as the builder core takes it, with daemon-side paths."""
    dfdir = workdir / "dockerfile"
    dfdir.mkdir(parents=True, exist_ok=True)
    name = _safe_name(req.dockerfile_name or "Dockerfile")
    dockerfile = dfdir / name
    dockerfile.write_bytes(req.dockerfile)
    # The client applied these; beside the Dockerfile they win over the context's own.
    # (Each build's local sources carry its own session id, so concurrent clients never
    # share each other's files.)
    (dfdir / (name + ".dockerignore")).write_text(
        "".join(p + "\n" for p in req.ignore_patterns), errors="surrogateescape")
    outputs: list[OutputSpec] = []
    deliveries: list[Delivery] = []
    for i, o in enumerate(req.outputs):
        spec = OutputSpec(o.type, dict(o.attrs))
        if spec.client_side:
            # written in the build's workdir, then streamed to the client: a file as its
            # bytes, a directory as a tar stream
            dest = workdir / (f"out-{i}.tar" if spec.is_tar_file else f"out-{i}")
            deliveries.append(Delivery(i, "file" if spec.is_tar_file else "tar", dest))
            spec.attrs["dest"] = str(dest)
        outputs.append(spec)
    cache_to: list[dict[str, str]] = []
    for i, c in enumerate(req.cache_to):
        attrs = dict(c.attrs)
        if attrs.get("type") == "local":
            # written here as an OCI layout, then merged into the client's dest by the
            # client (only the blobs it lacks are sent)
            dest = workdir / f"cache-{i}"
            deliveries.append(Delivery(len(req.outputs) + i, "cache", dest,
                                       lent_cache_name("to", i)))
            attrs["dest"] = str(dest)
        cache_to.append(attrs)
    breq = BuildRequest(
        context=local_dirs.get("context") if req.has_context else None,
        dockerfile=dockerfile,
        dockerfile_data=req.dockerfile,
        tags=list(req.tags),
        target=req.target or None,
        platforms=list(req.platforms),
        build_args=dict(req.build_args),
        build_contexts=dict(req.build_contexts),
        # ids only: values are fetched from the client when a RUN needs them
        secrets=[SecretSpec(sid) for sid in req.secret_ids],
        ssh=[SSHSpec(sid, []) for sid in req.ssh_ids],
        no_cache=req.no_cache,
        no_cache_filter=list(req.no_cache_filter),
        pull=req.pull,
        outputs=outputs,
        labels=dict(req.labels),
        network=req.network or "default",
        extra_hosts=[(h.partition("=")[0], h.partition("=")[2]) for h in req.extra_hosts],
        shm_size=req.shm_size,
        ulimits=[_ulimit(u) for u in req.ulimits],
        entitlements=list(req.entitlements),
        cache_to=cache_to,
        cache_from=[dict(c.attrs) for c in req.cache_from],
        metadata_file=workdir / "metadata.json" if req.want_metadata else None,
        iidfile=workdir / "iid" if req.want_iid else None,
        context_url=req.context_url or None,
        dockerfile_in_context=(req.dockerfile_in_context or None) if req.context_url else None,
        call=req.call or "build",
        metadata_warnings=req.metadata_warnings,
        debug_shell=list(req.debug_shell) or None,
        debug_on=req.debug_on or "error",
        # an older client sends no figure: the Dockerfile as written here (not the ignore
        # file beside it, which is ours)
        dockerfile_sent=req.dockerfile_sent if req.HasField("dockerfile_sent")
        else transfer_size(listing(dfdir, [name])),
    )
    return breq, deliveries


def _sync_with_progress(session: DaemonSession, name: str, slot: Path,
                        progress: ProgressSink) -> SyncStats:
    """Bring the daemon's copy of the client's directory ``name`` up to date.

    BuildKit shows no step of its own for this: the figure it shows is the
    ``transferring NAME:`` status of the local source's vertex, which the worker
    reports in BuildKit's measure. So bkpy's own accounting goes to the daemon's log;
    only a failure shows, as the step BuildKit would fail in.
    """
    started = time.time()
    try:
        stats = session.sync(name, slot / "tree", slot / "incoming")
    except BaseException as err:
        label = "[internal] load build context" if name == "context" \
            else f"[internal] load {name}"
        digest = f"session:{session.id}:{name}"
        progress(VertexStarted(digest, label, started))
        progress(VertexFailed(digest, label, started, time.time(), str(err)))
        raise
    _log.info("session %s: synced %r in %.3fs: transferred %d files (%d bytes, %d on the "
              "wire), %d unchanged, %d removed", session.id, name, time.time() - started,
              stats.files, stats.raw_bytes, stats.wire_bytes, stats.kept, stats.removed)
    return stats


def _client_paths(progress: ProgressSink, req: pb.SolveRequest,
                  deliveries: list[Delivery]) -> ProgressSink:
    """Show the client's destinations in step names, not the daemon's build directory."""
    if not deliveries:
        return progress
    def client_path(d: Delivery) -> str:
        if d.kind == "cache":
            return req.cache_to[d.index - len(req.outputs)].attrs.get("dest") or "-"
        return req.outputs[d.index].attrs.get("dest") or "-"

    swaps = [(str(d.path), client_path(d)) for d in deliveries]

    def rename(ev: ProgressEvent) -> None:
        name = getattr(ev, "name", "")
        if name and "/control/builds/" in name:
            for daemon_path, client_path in swaps:
                name = name.replace(daemon_path, client_path)
            ev = dataclasses.replace(ev, name=name)  # type: ignore[arg-type]
        progress(ev)

    return rename


def run_remote_build(builder: Builder, req: pb.SolveRequest, session: DaemonSession,
                     contexts: ContextCache, workdir: Path,
                     progress: ProgressSink, cancel: CancelToken | None = None) -> BuildOutcome:
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        local_dirs: dict[str, Path] = {}
        for ld in req.local_dirs:
            if ld.name != "context" and not ld.name.startswith("ctx-"):
                raise UsageError(f"unknown local directory {ld.name!r} in the request")
            if ld.name.startswith("ctx-"):
                stack.enter_context(contexts.named_lock(ld.name))
            slot = stack.enter_context(contexts.acquire(ld.context_id or
                                                        f"{session.id}:{ld.name}"))
            _sync_with_progress(session, ld.name, slot, progress)
            local_dirs[ld.name] = slot / "tree"
        if not req.has_context:
            empty = workdir / "empty-context"
            empty.mkdir()
            local_dirs["context"] = empty
        ssh = SSHForwarder(session, workdir / "ssh", list(req.ssh_ids))
        stack.callback(ssh.close)
        sockets = ssh.start()
        bsession = RemoteBuildSession(session, local_dirs, list(req.secret_ids), sockets,
                                      lent_root=workdir / "lent")
        breq, deliveries = to_build_request(req, workdir, local_dirs, session.id)
        if breq.debug_shell:  # the shell's terminal is the client's, over the session
            bsession.debug_shell = list(breq.debug_shell)
            if req.debug_rows and req.debug_cols:
                bsession.debug_size = (req.debug_rows, req.debug_cols)
        def run(sink: ProgressSink, keep: Callable[[FailedStep], None] | None
                ) -> BuildOutcome:
            bsession.on_failed_step = keep
            return builder.build(breq, sink, bsession, cancel)

        outcome = recorded(HistoryStore(builder.root), builder.config.history, breq,
                           _client_paths(progress, req, deliveries), run)
        for d in deliveries:
            if d.kind == "cache":
                if not (d.path / "index.json").is_file():
                    continue  # the export failed, with ignore-error=true
                d.skip_present(session.listing(d.lent) or [])
            session.send_output(d.index, d.kind, d.frames())
        return outcome
