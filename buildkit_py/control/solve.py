"""One remote build on the daemon: sync the lent directories, build, send the outputs.

The builder core writes exporter output to paths on the machine that runs it, so the
daemon points every client-side destination (``local``/``tar``/``oci``/``docker``
dests, ``--iidfile``, ``--metadata-file``) into a private build directory and streams
the results back over the session; the client writes the real destinations.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import queue
import shutil
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from buildkit_py.client.base import UsageItem
from buildkit_py.client.request import BuildRequest, OutputSpec, SecretSpec, SSHSpec
from buildkit_py.control import control_pb2 as pb
from buildkit_py.control.filesync import SyncStats
from buildkit_py.control.session_server import (
    DaemonSession,
    RemoteBuildSession,
    SSHForwarder,
)
from buildkit_py.control.wire import CHUNK
from buildkit_py.errors import UsageError
from buildkit_py.solver.progress import (
    ProgressEvent,
    VertexCompleted,
    VertexFailed,
    VertexLog,
    VertexStarted,
    VertexStatus,
)

if TYPE_CHECKING:
    from buildkit_py.solver.cancel import CancelToken
from buildkit_py.builder.core import Builder, BuildOutcome

ProgressSink = Callable[[ProgressEvent], None]
SLOTS = 8  # concurrent builds of one context each get their own synced copy


class ContextCache:
    """Per-client-context synced directories (``<root>/control/contexts``).

    A context id gets slot 0 normally; builds running at the same time on the same
    context take further slots, so one build never sees files change under it.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._busy: set[str] = set()
        self._named: dict[str, threading.Lock] = {}

    def named_lock(self, name: str) -> threading.Lock:
        """Builds lending a named context ``name`` take turns: the converter gives
        every build's ``local://ctx-NAME`` source the same digest, so two at once would
        share one client's files."""
        with self._lock:
            return self._named.setdefault(name, threading.Lock())

    @contextlib.contextmanager
    def acquire(self, context_id: str) -> Iterator[Path]:
        base = hashlib.sha256(context_id.encode()).hexdigest()[:32]
        slot = ""
        while not slot:
            with self._lock:
                for n in range(SLOTS):
                    name = f"{base}-{n}"
                    if name not in self._busy:
                        self._busy.add(name)
                        slot = name
                        break
            if not slot:
                time.sleep(0.2)
        try:
            path = self.root / slot
            path.mkdir(parents=True, exist_ok=True)
            os.utime(path)  # last use, for pruning
            yield path
        finally:
            with self._lock:
                self._busy.discard(slot)


    def usage(self) -> list[UsageItem]:
        """One record per synced context copy (``source.local`` in BuildKit's terms)."""
        from buildkit_py.snapshot.base import disk_usage

        out: list[UsageItem] = []
        if not self.root.is_dir():
            return out
        for entry in sorted(self.root.iterdir()):
            with self._lock:
                busy = entry.name in self._busy
            st = entry.stat()
            out.append(UsageItem(f"context:{entry.name}", disk_usage(entry).size,
                                 st.st_ctime, st.st_mtime, "local context copy", 1, busy,
                                 "source.local"))
        return out

    def prune(self, keep_duration: float | None) -> list[UsageItem]:
        """Drop copies not used within ``keep_duration`` seconds (None: all unused)."""
        now = time.time()
        removed: list[UsageItem] = []
        for item in self.usage():
            if item.in_use or (keep_duration is not None
                               and item.last_used >= now - keep_duration):
                continue
            name = item.id.removeprefix("context:")
            with self._lock:
                if name in self._busy:
                    continue
                self._busy.add(name)
            try:
                shutil.rmtree(self.root / name, ignore_errors=True)
            finally:
                with self._lock:
                    self._busy.discard(name)
            removed.append(item)
        return removed


@dataclass
class Delivery:
    """An exporter output written on the daemon, to be sent to the client."""

    index: int
    kind: str  # file | tar
    path: Path

    def frames(self) -> Iterator[bytes]:
        if self.kind == "file":
            return _file_frames(self.path)
        return _tar_frames(self.path)


def _file_frames(path: Path) -> Iterator[bytes]:
    import zstandard

    comp = zstandard.ZstdCompressor(level=3)
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            yield comp.compress(block)


class _QueueWriter:
    """A write-only file for tarfile that hands CHUNK-sized pieces to a queue."""

    def __init__(self, q: queue.Queue[bytes | BaseException | None]) -> None:
        self._q = q
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        self._buf += data
        while len(self._buf) >= CHUNK:
            self._q.put(bytes(self._buf[:CHUNK]))
            del self._buf[:CHUNK]
        return len(data)

    def flush_rest(self) -> None:
        if self._buf:
            self._q.put(bytes(self._buf))
            self._buf.clear()


def _tar_frames(root: Path) -> Iterator[bytes]:
    """``root`` as a tar stream (owners, modes, times, links kept), in zstd frames.

    A producer thread writes the tar into a bounded queue, so memory stays small
    however large the files are.
    """
    import zstandard

    q: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=8)

    def produce() -> None:
        writer = _QueueWriter(q)
        try:
            with tarfile.open(fileobj=writer, mode="w|",  # type: ignore[call-overload]
                              format=tarfile.PAX_FORMAT) as tf:
                for dirpath, dirnames, filenames in os.walk(root):
                    dirnames.sort()
                    rel_dir = os.path.relpath(dirpath, root)
                    for name in sorted(dirnames) + sorted(filenames):
                        full = os.path.join(dirpath, name)
                        rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                        tf.add(full, arcname=rel, recursive=False)
            writer.flush_rest()
            q.put(None)
        except BaseException as err:
            q.put(err)

    threading.Thread(target=produce, daemon=True, name="tar-output").start()
    comp = zstandard.ZstdCompressor(level=3)
    while True:
        item = q.get()
        if item is None:
            return
        if isinstance(item, BaseException):
            raise item
        yield comp.compress(item)


def _safe_name(name: str) -> str:
    base = Path(name).name
    return base if base not in ("", ".", "..") else "Dockerfile"


def _ulimit(text: str) -> tuple[str, int, int]:
    """A client's ``NAME=SOFT:HARD``, checked again: the daemon trusts no client."""
    from buildkit_py.units import parse_ulimit

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
        attrs = dict(o.attrs)
        if o.type == "local":
            dest = workdir / f"out-{i}"
            deliveries.append(Delivery(i, "tar", dest))
        elif o.type == "tar" or (o.type in ("oci", "docker") and attrs.get("tar") != "false"):
            dest = workdir / f"out-{i}.tar"
            deliveries.append(Delivery(i, "file", dest))
        elif o.type in ("oci", "docker"):
            dest = workdir / f"out-{i}"
            deliveries.append(Delivery(i, "tar", dest))
        else:
            outputs.append(OutputSpec(o.type, attrs))
            continue
        attrs["dest"] = str(dest)
        outputs.append(OutputSpec(o.type, attrs))
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
        cache_to=[dict(c.attrs) for c in req.cache_to],
        cache_from=[dict(c.attrs) for c in req.cache_from],
        metadata_file=workdir / "metadata.json" if req.want_metadata else None,
        iidfile=workdir / "iid" if req.want_iid else None,
    )
    return breq, deliveries


def _sync_with_progress(session: DaemonSession, name: str, slot: Path,
                        progress: ProgressSink) -> SyncStats:
    """A transfer shows as BuildKit's ``[internal] load build context`` vertex."""
    label = "[internal] transferring context" if name == "context" \
        else f"[internal] transferring {name}"
    digest = f"session:{session.id}:{name}"
    started = time.time()
    progress(VertexStarted(digest, label, started))
    try:
        stats = session.sync(name, slot / "tree", slot / "incoming")
    except BaseException as err:
        progress(VertexFailed(digest, label, started, time.time(), str(err)))
        raise
    now = time.time()
    progress(VertexStatus("transferring context", digest, label, stats.wire_bytes, None,
                          now, started, now))
    progress(VertexLog(digest, 1, (
        f"transferred {stats.files} files ({stats.raw_bytes} bytes, "
        f"{stats.wire_bytes} on the wire), {stats.kept} unchanged, "
        f"{stats.removed} removed\n").encode(), now))
    progress(VertexCompleted(digest, label, started, now))
    return stats


def _client_paths(progress: ProgressSink, req: pb.SolveRequest,
                  deliveries: list[Delivery]) -> ProgressSink:
    """Show the client's destinations in step names, not the daemon's build directory."""
    if not deliveries:
        return progress
    swaps = [(str(d.path), req.outputs[d.index].attrs.get("dest") or "-") for d in deliveries]

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
        bsession = RemoteBuildSession(session, local_dirs, list(req.secret_ids), sockets)
        breq, deliveries = to_build_request(req, workdir, local_dirs, session.id)
        outcome = builder.build(breq, _client_paths(progress, req, deliveries), bsession,
                                cancel)
        for d in deliveries:
            session.send_output(d.index, d.kind, d.frames())
        return outcome
