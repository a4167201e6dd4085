"""Progress fan-out: subscribers, streams, thread safety, writer events."""

from __future__ import annotations

import threading

from buildkit_py.solver.progress import (
    ProgressBus,
    ProgressEvent,
    ProgressWriter,
    VertexCached,
    VertexLog,
    VertexStatus,
)


def test_every_subscriber_gets_every_event_and_unsubscribe_stops_it() -> None:
    bus = ProgressBus()
    a: list[ProgressEvent] = []
    b: list[ProgressEvent] = []
    sub_a = bus.subscribe(a.append)
    bus.subscribe(b.append)
    ev = VertexCached("sha256:x", "x", 1.0)
    bus.publish(ev)
    sub_a.close()
    bus.publish(ev)
    assert a == [ev] and b == [ev, ev]


def test_a_failing_subscriber_does_not_stop_others() -> None:
    bus = ProgressBus()
    got: list[ProgressEvent] = []

    def broken(_e: ProgressEvent) -> None:
        raise RuntimeError("display bug")

    bus.subscribe(broken)
    bus.subscribe(got.append)
    bus.publish(VertexCached("d", "n", 1.0))
    assert len(got) == 1


def test_stream_yields_events_from_many_threads_until_closed() -> None:
    bus = ProgressBus()
    stream = bus.stream()
    writers = [ProgressWriter(f"sha256:{t}", f"v{t}", bus.publish) for t in range(4)]

    def spam(w: ProgressWriter) -> None:
        for i in range(250):
            w.log(1, f"{i}\n")

    threads = [threading.Thread(target=spam, args=(w,)) for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bus.close()
    events = list(stream)
    assert len(events) == 1000
    for w in writers:  # per-writer order is preserved
        mine = [e for e in events if isinstance(e, VertexLog) and e.digest == w.digest]
        assert [int(e.data) for e in mine] == list(range(250))
    assert stream.get(timeout=0) is None


def test_writer_status_keeps_start_time_and_marks_completion() -> None:
    got: list[ProgressEvent] = []
    w = ProgressWriter("sha256:v", "pull", got.append)
    w.status("sha256:layer", 10, 100)
    w.status("sha256:layer", 100, 100, completed=True)
    w.log(2, b"")  # empty chunks are not events
    first, last = got
    assert isinstance(first, VertexStatus) and isinstance(last, VertexStatus)
    assert first.started == last.started and first.completed is None
    assert last.completed is not None and (last.current, last.total) == (100, 100)
