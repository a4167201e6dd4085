"""Progress events and errors on the wire: solver events <-> ``bkpy.control.v1`` messages.

Shared by the daemon (encoding) and the remote client (decoding), so a remote build
feeds the display exactly the events an embedded build would.
"""

from __future__ import annotations

from buildkit_py.control import control_pb2 as pb
from buildkit_py.solver.progress import (
    ProgressEvent,
    VertexCached,
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

# Raw chunk size of file and output data before zstd (well under gRPC's 4 MiB limit).
CHUNK = 1 << 20


def event_to_pb(ev: ProgressEvent) -> pb.ProgressEvent:
    if isinstance(ev, VertexStarted):
        return pb.ProgressEvent(started=pb.VertexStarted(
            digest=ev.digest, name=ev.name, started=ev.started))
    if isinstance(ev, VertexCached):
        return pb.ProgressEvent(cached=pb.VertexCached(
            digest=ev.digest, name=ev.name, timestamp=ev.timestamp))
    if isinstance(ev, VertexCompleted):
        return pb.ProgressEvent(completed=pb.VertexCompleted(
            digest=ev.digest, name=ev.name, started=ev.started, completed=ev.completed))
    if isinstance(ev, VertexFailed):
        return pb.ProgressEvent(failed=pb.VertexFailed(
            digest=ev.digest, name=ev.name, started=ev.started, completed=ev.completed,
            error=ev.error, cancelled=ev.cancelled))
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
        return VertexStarted(s.digest, s.name, s.started)
    if kind == "cached":
        c = msg.cached
        return VertexCached(c.digest, c.name, c.timestamp)
    if kind == "completed":
        d = msg.completed
        return VertexCompleted(d.digest, d.name, d.started, d.completed)
    if kind == "failed":
        f = msg.failed
        return VertexFailed(f.digest, f.name, f.started, f.completed, f.error, f.cancelled)
    if kind == "log":
        lg = msg.log
        return VertexLog(lg.digest, lg.stream, lg.data, lg.timestamp)
    if kind == "status":
        st = msg.status
        return VertexStatus(st.id, st.digest, st.name, st.current,
                            st.total if st.HasField("total") else None, st.timestamp,
                            st.started, st.completed if st.HasField("completed") else None)
    return None
