"""The contract's values on the wire: solver progress events and ``du``/``prune`` records
<-> ``bkpy.control.v1`` messages, the metadata keys of errors and sessions, and file
data as zstd frames.

Shared by the daemon and the remote client, so a remote build feeds the display exactly
the events an embedded build would, and both ends cut files into the same frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from buildkit_py.api import control_pb2 as pb
from buildkit_py.api.usage import PruneOptions, UsageItem
from buildkit_py.solver.progress import (
    ProgressEvent,
    VertexCached,
    VertexCacheMiss,
    VertexCompleted,
    VertexFailed,
    VertexLog,
    VertexStarted,
    VertexStatus,
)

# Trailing metadata of a failed Solve: the rendered error and the CLI exit code.
ERROR_TEXT_KEY = "bkpy-error-text"
EXIT_CODE_KEY = "bkpy-exit-code"
SESSION_ID_KEY = "bkpy-session-id"


def error_trailer(text: str, exit_code: int) -> tuple[tuple[str, str | bytes], ...]:
    """The trailing metadata of a failed call: the rendered error and the exit code."""
    return ((ERROR_TEXT_KEY + "-bin", text.encode("utf-8", "replace")),
            (EXIT_CODE_KEY, str(exit_code)))


def error_from_trailer(trailer: Iterable[tuple[str, str | bytes]]) -> tuple[str, int]:
    """``error_trailer``'s rendered error and exit code (``""`` when it carries none)."""
    text, code = "", 1
    for key, value in trailer:
        if key == ERROR_TEXT_KEY + "-bin":
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        elif key == EXIT_CODE_KEY:
            code = int(value)
    return text, code


def lent_cache_name(flag: str, index: int) -> str:
    """The session name under which the client lends the directory of its ``index``-th
    ``--cache-from type=local,src=`` (``flag`` "from": read file by file) or
    ``--cache-to type=local,dest=`` ("to": listed, so only missing blobs are sent)."""
    return f"cache-{flag}-{index}"


# Raw chunk size of file and output data before zstd (well under gRPC's 4 MiB limit).
CHUNK = 1 << 20
ZSTD_LEVEL = 3


def file_frames(path: str | Path) -> Iterator[bytes]:
    """The file's content as independent zstd frames of at most CHUNK raw bytes each."""
    import zstandard  # reason: only transfers need it, not every client start-up

    comp = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            yield comp.compress(block)


def event_to_pb(ev: ProgressEvent) -> pb.ProgressEvent:
    if isinstance(ev, VertexStarted):
        return pb.ProgressEvent(started=pb.VertexStarted(
            digest=ev.digest, name=ev.name, started=ev.started, inputs=ev.inputs))
    if isinstance(ev, VertexCached):
        return pb.ProgressEvent(cached=pb.VertexCached(
            digest=ev.digest, name=ev.name, timestamp=ev.timestamp, inputs=ev.inputs))
    if isinstance(ev, VertexCompleted):
        return pb.ProgressEvent(completed=pb.VertexCompleted(
            digest=ev.digest, name=ev.name, started=ev.started, completed=ev.completed))
    if isinstance(ev, VertexFailed):
        return pb.ProgressEvent(failed=pb.VertexFailed(
            digest=ev.digest, name=ev.name, started=ev.started, completed=ev.completed,
            error=ev.error, cancelled=ev.cancelled))
    if isinstance(ev, VertexCacheMiss):
        return pb.ProgressEvent(cache_miss=pb.VertexCacheMiss(
            digest=ev.digest, name=ev.name, reason=ev.reason, timestamp=ev.timestamp))
    if isinstance(ev, VertexLog):
        return pb.ProgressEvent(log=pb.VertexLog(
            digest=ev.digest, stream=ev.stream, data=ev.data, timestamp=ev.timestamp))
    status = pb.VertexStatus(id=ev.id, digest=ev.digest, name=ev.name, current=ev.current,
                             timestamp=ev.timestamp, started=ev.started)
    if ev.total is not None:
        status.total = ev.total
    if ev.completed is not None:
        status.completed = ev.completed
    return pb.ProgressEvent(status=status)


def event_from_pb(msg: pb.ProgressEvent) -> ProgressEvent | None:
    kind = msg.WhichOneof("event")
    if kind == "started":
        s = msg.started
        return VertexStarted(s.digest, s.name, s.started, tuple(s.inputs))
    if kind == "cached":
        c = msg.cached
        return VertexCached(c.digest, c.name, c.timestamp, tuple(c.inputs))
    if kind == "completed":
        d = msg.completed
        return VertexCompleted(d.digest, d.name, d.started, d.completed)
    if kind == "failed":
        f = msg.failed
        return VertexFailed(f.digest, f.name, f.started, f.completed, f.error, f.cancelled)
    if kind == "cache_miss":
        cm = msg.cache_miss
        return VertexCacheMiss(cm.digest, cm.name, cm.reason, cm.timestamp)
    if kind == "log":
        lg = msg.log
        return VertexLog(lg.digest, lg.stream, lg.data, lg.timestamp)
    if kind == "status":
        st = msg.status
        return VertexStatus(st.id, st.digest, st.name, st.current,
                            st.total if st.HasField("total") else None, st.timestamp,
                            st.started, st.completed if st.HasField("completed") else None)
    return None


def usage_to_pb(item: UsageItem) -> pb.UsageRecord:
    return pb.UsageRecord(id=item.id, size=item.size, created_at=item.created,
                          last_used_at=item.last_used, description=item.description,
                          usage_count=item.usage_count, in_use=item.in_use,
                          record_type=item.record_type)


def usage_from_pb(r: pb.UsageRecord) -> UsageItem:
    return UsageItem(r.id, r.size, r.created_at, r.last_used_at, r.description,
                     r.usage_count, r.in_use, r.record_type or "regular")


def prune_to_pb(opts: PruneOptions) -> pb.PruneRequest:
    req = pb.PruneRequest(all=opts.all, corrupt=opts.corrupt, filters=list(opts.filters))
    if opts.keep_duration is not None:
        req.keep_duration = opts.keep_duration
    if opts.keep_storage is not None:
        req.keep_storage = opts.keep_storage
    return req


def prune_from_pb(req: pb.PruneRequest) -> PruneOptions:
    return PruneOptions(
        all=req.all,
        keep_duration=req.keep_duration if req.HasField("keep_duration") else None,
        keep_storage=req.keep_storage if req.HasField("keep_storage") else None,
        corrupt=req.corrupt, filters=tuple(req.filters))
