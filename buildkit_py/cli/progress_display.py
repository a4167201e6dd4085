"""Progress displays for ``--progress plain|tty|rawjson|quiet``.

The display is fed plain calls (``vertex``, ``log``, ``status``) by an adapter
that subscribes to the solver's progress bus, so the same display serves the
embedded builder and, later, events arriving over gRPC from a daemon.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from buildkit_py.api.outcome import WARNING_STREAM

# The plain display's own line for why a step ran: "#7 cache miss: build arg V changed".
CACHE_MISS_PREFIX = "cache miss: "


@dataclass
class VertexView:
    digest: str
    name: str
    number: int
    started: float | None = None
    completed: float | None = None
    cached: bool = False
    error: str | None = None
    logs: list[str] = field(default_factory=list)
    partial: dict[int, bytes] = field(default_factory=dict)
    statuses: dict[str, tuple[int, int | None, bool]] = field(default_factory=dict)
    printed_header: bool = False
    miss: str | None = None  # why it ran (bkpy's own; BuildKit has no such line)


class Display:
    """Base display: keeps per-vertex state; subclasses decide what to print."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stderr
        self.vertices: dict[str, VertexView] = {}
        self.lock = threading.Lock()
        self.t0 = time.time()
        self.warnings: list[str] = []  # lint warnings seen (their short form), for buildx's
        # summary even when the build fails

    def _view(self, digest: str, name: str) -> VertexView:
        v = self.vertices.get(digest)
        if v is None:
            v = VertexView(digest, name, len(self.vertices) + 1)
            self.vertices[digest] = v
        elif name:
            v.name = name
        return v

    def vertex(self, digest: str, name: str, *, started: float | None = None,
               completed: float | None = None, cached: bool = False,
               error: str | None = None) -> None:
        with self.lock:
            v = self._view(digest, name)
            if started is not None and v.started is None:
                v.started = started
            if completed is not None:
                v.completed = completed
            v.cached = v.cached or cached
            if error:
                v.error = error
            self.on_vertex(v)

    def log(self, digest: str, stream: int, data: bytes, timestamp: float) -> None:
        if stream == WARNING_STREAM:  # a lint warning (BuildKit's VertexWarning as JSON)
            try:
                record = json.loads(data)
            except ValueError:
                return
            with self.lock:
                self.warnings.append(
                    base64.b64decode(record.get("short", "")).decode("utf-8", "replace"))
                self.on_warning(self._view(digest, ""), record)
            return
        with self.lock:
            v = self._view(digest, "")
            buf = v.partial.get(stream, b"") + data
            *lines, rest = buf.split(b"\n")
            v.partial[stream] = rest
            for raw in lines:
                line = raw.decode("utf-8", "replace").rstrip("\r")
                v.logs.append(line)
                self.on_log(v, line, timestamp)

    def status(self, digest: str, sid: str, current: int, total: int | None,
               completed: bool) -> None:
        with self.lock:
            v = self._view(digest, "")
            v.statuses[sid] = (current, total, completed)
            self.on_status(v, sid)

    def cache_miss(self, digest: str, name: str, reason: str) -> None:
        """Why a step runs (once per step, after it started)."""
        with self.lock:
            v = self._view(digest, name)
            if v.miss is not None:
                return
            v.miss = reason
            self.on_cache_miss(v)

    def flush_partial(self, v: VertexView, timestamp: float) -> None:
        for stream, rest in list(v.partial.items()):
            if rest:
                line = rest.decode("utf-8", "replace")
                v.logs.append(line)
                self.on_log(v, line, timestamp)
            v.partial[stream] = b""

    def close(self) -> None:
        """Called once at the end of the build."""

    def on_vertex(self, v: VertexView) -> None:
        pass

    def on_log(self, v: VertexView, line: str, timestamp: float) -> None:
        pass

    def on_status(self, v: VertexView, sid: str) -> None:
        pass

    def on_warning(self, v: VertexView, record: dict[str, Any]) -> None:
        pass

    def on_cache_miss(self, v: VertexView) -> None:
        pass


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.2f}{unit}"
        value /= 1000
    return f"{n}B"


class PlainDisplay(Display):
    """BuildKit's ``--progress=plain`` layout: ``#N name`` / log lines / ``#N DONE 0.3s``."""

    def _header(self, v: VertexView) -> None:
        if not v.printed_header:
            self.out.write(f"\n#{v.number} {v.name}\n")
            v.printed_header = True

    def on_vertex(self, v: VertexView) -> None:
        if v.cached and v.completed is not None:
            self._header(v)
            self.out.write(f"#{v.number} CACHED\n")
        elif v.error:
            self.flush_partial(v, time.time())
            self._header(v)
            self.out.write(f"#{v.number} ERROR: {v.error}\n")
        elif v.completed is not None:
            self.flush_partial(v, v.completed)
            self._header(v)
            took = v.completed - (v.started or v.completed)
            self.out.write(f"#{v.number} DONE {took:.1f}s\n")
        elif v.started is not None:
            self._header(v)
        self.out.flush()

    def on_log(self, v: VertexView, line: str, timestamp: float) -> None:
        self._header(v)
        since = timestamp - (v.started or timestamp)
        self.out.write(f"#{v.number} {since:.3f} {line}\n")

    def on_warning(self, v: VertexView, record: dict[str, Any]) -> None:
        self._header(v)
        short = base64.b64decode(record.get("short", "")).decode("utf-8", "replace")
        self.out.write(f"#{v.number} WARN: {short}\n")
        self.out.flush()

    def on_cache_miss(self, v: VertexView) -> None:
        # "#N cache miss: ..." has no timestamp, so it never reads as a log line
        self._header(v)
        self.out.write(f"#{v.number} {CACHE_MISS_PREFIX}{v.miss}\n")
        self.out.flush()

    def on_status(self, v: VertexView, sid: str) -> None:
        current, total, done = v.statuses[sid]
        if not done:
            return
        self._header(v)
        amount = _size(current) if total is None else f"{_size(current)} / {_size(total)}"
        self.out.write(f"#{v.number} {sid} {amount} done\n")


class RawJSONDisplay(Display):
    """One JSON object per event, for machines."""

    def on_vertex(self, v: VertexView) -> None:
        rec: dict[str, object] = {"vertex": v.digest, "name": v.name}
        if v.started is not None:
            rec["started"] = v.started
        if v.completed is not None:
            rec["completed"] = v.completed
        if v.cached:
            rec["cached"] = True
        if v.error:
            rec["error"] = v.error
        self.out.write(json.dumps({"vertexes": [rec]}) + "\n")

    def on_log(self, v: VertexView, line: str, timestamp: float) -> None:
        self.out.write(json.dumps({"logs": [{"vertex": v.digest, "timestamp": timestamp,
                                             "msg": line}]}) + "\n")

    def on_warning(self, v: VertexView, record: dict[str, Any]) -> None:
        self.out.write(json.dumps({"warnings": [record]}) + "\n")

    def on_cache_miss(self, v: VertexView) -> None:
        self.out.write(json.dumps({"bkpy.cacheMisses": [{"vertex": v.digest,
                                                         "reason": v.miss}]}) + "\n")

    def on_status(self, v: VertexView, sid: str) -> None:
        current, total, done = v.statuses[sid]
        self.out.write(json.dumps({"statuses": [{"vertex": v.digest, "id": sid,
                                                 "current": current, "total": total,
                                                 "completed": done}]}) + "\n")


class QuietDisplay(Display):
    pass


class TTYDisplay(Display):
    """Live view: running steps with their last log lines; finished steps collapse."""

    def __init__(self, out: TextIO | None = None) -> None:
        super().__init__(out)
        # reason: rich (~40 ms) is for the tty display only, not plain or quiet progress
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=self.out)
        self.live = Live(console=self.console, refresh_per_second=8, transient=True)
        self.live.start()
        self._stop = False

    def _render(self) -> object:
        from rich.text import Text  # reason: rich, as in __init__: the tty display only

        now = time.time()
        width = max(20, self.console.width - 12)

        def fit(name: str) -> str:
            return name if len(name) <= width else name[: width - 3] + "..."

        done = sum(1 for v in self.vertices.values() if v.completed is not None)
        text = Text(f"[+] Building {now - self.t0:.1f}s ({done}/{len(self.vertices)})\n")
        for v in self.vertices.values():
            if v.started is None and not v.cached:
                continue
            if v.cached and v.completed is not None:
                text.append(f" => CACHED {fit(v.name)}\n", style="blue")
            elif v.error:
                text.append(f" => ERROR {fit(v.name)}\n", style="red")
            elif v.completed is not None:
                took = v.completed - (v.started or v.completed)
                text.append(f" => {fit(v.name):<{width}} {took:.1f}s\n", style="blue")
            else:
                took = now - (v.started or now)
                text.append(f" => {fit(v.name):<{width}} {took:.1f}s\n")
                if v.miss:
                    text.append(f" => => {fit(CACHE_MISS_PREFIX + v.miss)}\n", style="yellow")
                for line in v.logs[-6:]:
                    text.append(f" => => # {fit(line)}\n", style="dim")
        return text

    def on_vertex(self, v: VertexView) -> None:
        self.live.update(self._render())  # type: ignore[arg-type]

    def on_log(self, v: VertexView, line: str, timestamp: float) -> None:
        self.live.update(self._render())  # type: ignore[arg-type]

    def on_cache_miss(self, v: VertexView) -> None:
        self.live.update(self._render())  # type: ignore[arg-type]

    def close(self) -> None:
        self.live.update(self._render())  # type: ignore[arg-type]
        self.live.stop()
        self.console.print(self._render())


def make_display(mode: str, out: TextIO | None = None) -> Display:
    stream = out or sys.stderr
    if mode == "auto":
        mode = "tty" if stream.isatty() else "plain"
    if mode == "plain":
        return PlainDisplay(stream)
    if mode == "rawjson":
        return RawJSONDisplay(stream)
    if mode == "tty":
        return TTYDisplay(stream)
    return QuietDisplay(stream)
