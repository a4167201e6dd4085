"""Progress displays for ``--progress auto|tty|plain|rawjson|quiet|none``.

The display is fed plain calls (``vertex``, ``log``, ``status``) by :func:`feed`, which
translates the solver's progress events, so the same display serves the embedded
builder, events arriving over gRPC from a daemon, and a recorded build's replay.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from buildkit_py.api.outcome import WARNING_STREAM
from buildkit_py.errors import UsageError
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

# The plain display's own line for why a step ran: "#7 cache miss: build arg V changed".
CACHE_MISS_PREFIX = "cache miss: "
# Every value of --progress; "none" prints nothing, as buildx's.
MODES = ("auto", "tty", "plain", "rawjson", "quiet", "none")


@dataclass
class StatusView:
    """Sub-progress of a vertex (a layer's bytes, a transfer), as BuildKit's VertexStatus."""

    id: str
    name: str = ""
    current: int = 0
    total: int | None = None
    timestamp: float = 0.0
    started: float | None = None
    completed: float | None = None
    printed: tuple[int, float] | None = None  # plain: (current, timestamp) last printed


@dataclass
class VertexView:
    digest: str
    name: str
    number: int
    started: float | None = None
    completed: float | None = None
    cached: bool = False
    error: str | None = None
    inputs: tuple[str, ...] = ()
    logs: list[str] = field(default_factory=list)
    partial: dict[int, bytes] = field(default_factory=dict)
    statuses: dict[str, StatusView] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    printed_header: bool = False
    miss: str | None = None  # why it ran (bkpy's own; BuildKit has no such line)

    @property
    def running(self) -> bool:
        return self.started is not None and self.completed is None


def feed(display: Display, event: ProgressEvent) -> None:
    """Translate one solver progress event into display calls."""
    if isinstance(event, VertexStarted):
        display.vertex(event.digest, event.name, started=event.started,
                       inputs=tuple(event.inputs))
    elif isinstance(event, VertexCached):
        display.vertex(event.digest, event.name, started=event.timestamp,
                       completed=event.timestamp, cached=True, inputs=tuple(event.inputs))
    elif isinstance(event, VertexCompleted):
        display.vertex(event.digest, event.name, started=event.started,
                       completed=event.completed)
    elif isinstance(event, VertexFailed):
        if not event.cancelled:
            display.vertex(event.digest, event.name, started=event.started,
                           completed=event.completed, error=event.error)
    elif isinstance(event, VertexLog):
        display.log(event.digest, event.stream, event.data, event.timestamp)
    elif isinstance(event, VertexCacheMiss):
        display.cache_miss(event.digest, event.name, event.reason)
    elif isinstance(event, VertexStatus):
        display.status(event.digest, event.id, event.current, event.total,
                       event.completed is not None, name=event.name,
                       timestamp=event.timestamp, started=event.started,
                       completed_at=event.completed)


class Display:
    """Base display: keeps per-vertex state; subclasses decide what to print.

    ``builder`` (name, driver) is the builder the build runs on, which buildx names
    (``#0 building with "NAME" instance using DRIVER driver``, ``DRIVER:NAME`` on the
    live screen's first line)."""

    def __init__(self, out: TextIO | None = None,
                 builder: tuple[str, str] | None = None) -> None:
        self.out = out or sys.stderr
        self.builder = builder
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
               error: str | None = None, inputs: tuple[str, ...] = ()) -> None:
        with self.lock:
            v = self._view(digest, name)
            if started is not None and v.started is None:
                v.started = started
            if completed is not None:
                v.completed = completed
            v.cached = v.cached or cached
            if error:
                v.error = error
            if inputs:
                v.inputs = inputs
            self.on_vertex(v)

    def log(self, digest: str, stream: int, data: bytes, timestamp: float) -> None:
        if stream == WARNING_STREAM:  # a lint warning (BuildKit's VertexWarning as JSON)
            try:
                record = json.loads(data)
            except ValueError:
                return
            short = base64.b64decode(record.get("short", "")).decode("utf-8", "replace")
            with self.lock:
                self.warnings.append(short)
                v = self._view(digest, "")
                v.warnings.append(short)
                self.on_warning(v, record)
            return
        with self.lock:
            v = self._view(digest, "")
            self.on_chunk(v, stream, data, timestamp)
            buf = v.partial.get(stream, b"") + data
            *lines, rest = buf.split(b"\n")
            v.partial[stream] = rest
            for raw in lines:
                line = raw.decode("utf-8", "replace").rstrip("\r")
                v.logs.append(line)
                self.on_log(v, line, timestamp)

    def status(self, digest: str, sid: str, current: int, total: int | None,
               completed: bool, *, name: str = "", timestamp: float | None = None,
               started: float | None = None, completed_at: float | None = None) -> None:
        now = time.time()
        with self.lock:
            v = self._view(digest, "")
            s = v.statuses.get(sid)
            if s is None:
                s = v.statuses[sid] = StatusView(sid)
            s.name = name if name and name != sid else s.name
            s.current, s.total = current, total
            s.timestamp = timestamp if timestamp is not None else now
            if s.started is None:
                s.started = started if started is not None else s.timestamp
            if completed:
                s.completed = completed_at if completed_at is not None else s.timestamp
            self.on_status(v, s)

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

    def on_chunk(self, v: VertexView, stream: int, data: bytes, timestamp: float) -> None:
        """A raw output chunk, before it is split into lines."""

    def on_log(self, v: VertexView, line: str, timestamp: float) -> None:
        pass

    def on_status(self, v: VertexView, s: StatusView) -> None:
        pass

    def on_warning(self, v: VertexView, record: dict[str, Any]) -> None:
        pass

    def on_cache_miss(self, v: VertexView) -> None:
        pass


def size_text(n: int) -> str:
    """A byte count as BuildKit's displays print it: ``123B``, ``1.23kB``, ``40.01MB``."""
    if n < 1000:
        return f"{n}B"
    value = float(n)
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        value /= 1000
        if value < 1000 or unit == "PB":
            return f"{value:.2f}{unit}"
    return f"{n}B"


def status_amount(s: StatusView) -> str:
    """``12.00MB / 30.00MB``, or the bytes so far when the total is unknown."""
    if s.total:
        return f"{size_text(s.current)} / {size_text(s.total)}"
    return size_text(s.current) if s.current else ""


# As BuildKit's plain printer: an unfinished status is printed again only after 5% more
# of its total or 5 seconds.
_PLAIN_STATUS_STEP = 0.05
_PLAIN_STATUS_SECONDS = 5.0


class PlainDisplay(Display):
    """BuildKit's ``--progress=plain`` layout: ``#N name`` / log lines / ``#N DONE 0.3s``."""

    def _header(self, v: VertexView) -> None:
        if not v.printed_header:
            if self.builder is not None:  # once, before the first step
                name, driver = self.builder
                self.out.write(f'#0 building with "{name}" instance using {driver} driver\n')
                self.builder = None
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
        self.out.write(f"#{v.number} WARN: {v.warnings[-1]}\n")
        self.out.flush()

    def on_cache_miss(self, v: VertexView) -> None:
        # "#N cache miss: ..." has no timestamp, so it never reads as a log line
        self._header(v)
        self.out.write(f"#{v.number} {CACHE_MISS_PREFIX}{v.miss}\n")
        self.out.flush()

    def on_status(self, v: VertexView, s: StatusView) -> None:
        if s.completed is None and s.printed is not None:
            last_current, last_time = s.printed
            step = (s.current - last_current) / s.total if s.total else 0.0
            if step < _PLAIN_STATUS_STEP and s.timestamp - last_time < _PLAIN_STATUS_SECONDS:
                return
        s.printed = (s.current, s.timestamp)
        self._header(v)
        amount = status_amount(s)
        line = f"#{v.number} {s.id}" + (f" {amount}" if amount else "")
        took = (s.completed or s.timestamp) - (s.started or s.timestamp)
        if took > 0.01:
            line += f" {took:.1f}s"
        if s.completed is not None:
            line += " done"
        self.out.write(line + "\n")
        self.out.flush()


def rawjson_digest(digest: str) -> str:
    """A vertex's digest in BuildKit's form: solver vertices already are ``sha256:``
    digests; bkpy's other steps (``export:3``) get the digest of their id."""
    if digest.startswith("sha256:"):
        return digest
    return "sha256:" + hashlib.sha256(digest.encode()).hexdigest()


def rfc3339(ts: float) -> str:
    """A Unix time as Go marshals a ``time.Time`` (RFC 3339, UTC, nanoseconds without
    trailing zeros)."""
    whole = int(ts)
    nanos = round((ts - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{nanos:09d}".rstrip("0")
    return f"{text}.{frac}Z" if frac else f"{text}Z"


def go_json(value: object) -> str:
    """JSON as Go's encoder writes it: compact, UTF-8, with ``<``, ``>``, ``&``, U+2028
    and U+2029 escaped (they only ever occur inside strings)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


class RawJSONDisplay(Display):
    """BuildKit's SolveStatus, one JSON object per line, as ``buildx --progress rawjson``:
    ``vertexes``, ``statuses``, ``logs`` (raw chunks, base64) and ``warnings``."""

    def _write(self, record: dict[str, object]) -> None:
        self.out.write(go_json(record) + "\n")
        self.out.flush()

    def on_vertex(self, v: VertexView) -> None:
        rec: dict[str, object] = {"digest": rawjson_digest(v.digest)}
        if v.inputs:
            rec["inputs"] = [rawjson_digest(i) for i in v.inputs]
        rec["name"] = v.name
        if v.started is not None:
            rec["started"] = rfc3339(v.started)
        if v.completed is not None:
            rec["completed"] = rfc3339(v.completed)
        if v.cached:
            rec["cached"] = True
        if v.error:
            rec["error"] = v.error
        self._write({"vertexes": [rec]})

    def on_chunk(self, v: VertexView, stream: int, data: bytes, timestamp: float) -> None:
        rec: dict[str, object] = {"vertex": rawjson_digest(v.digest)}
        if stream:
            rec["stream"] = stream
        rec["data"] = base64.b64encode(data).decode()
        rec["timestamp"] = rfc3339(timestamp)
        self._write({"logs": [rec]})

    def on_warning(self, v: VertexView, record: dict[str, Any]) -> None:
        self._write({"warnings": [{**record, "vertex": rawjson_digest(v.digest)}]})

    def on_cache_miss(self, v: VertexView) -> None:
        self._write({"bkpy.cacheMisses": [{"vertex": rawjson_digest(v.digest),
                                           "reason": v.miss}]})

    def on_status(self, v: VertexView, s: StatusView) -> None:
        rec: dict[str, object] = {"id": s.id, "vertex": rawjson_digest(v.digest)}
        if s.name:
            rec["name"] = s.name
        if s.total:
            rec["total"] = s.total
        rec["current"] = s.current
        rec["timestamp"] = rfc3339(s.timestamp)
        if s.started is not None:
            rec["started"] = rfc3339(s.started)
        if s.completed is not None:
            rec["completed"] = rfc3339(s.completed)
        self._write({"statuses": [rec]})


class QuietDisplay(Display):
    pass


# The live screen, as buildx draws it: redrawn on every event (at most every 100 ms) and
# on a 150 ms timer while a step runs, so the timers keep counting between events.
_TTY_EVENT_INTERVAL = 0.1
_TTY_TICK = 0.15
_TTY_LOG_LINES = 6
_BLUE, _YELLOW, _RED, _FAINT, _RESET = "\x1b[34m", "\x1b[33m", "\x1b[31m", "\x1b[2m", "\x1b[0m"


@dataclass
class _Line:
    text: str  # what goes left of the timer
    seconds: float | None  # the timer (None: no timer, a log line)
    color: str = ""


class TTYDisplay(Display):
    """Live view: every started step with its timer, its sub-progress (bytes pulled and
    pushed) and, while it runs, its last log lines; ``[+] Building 1.2s (8/8) FINISHED``
    with every step at the end."""

    def __init__(self, out: TextIO | None = None,
                 builder: tuple[str, str] | None = None) -> None:
        super().__init__(out, builder)
        self.color = not os.environ.get("NO_COLOR")
        self.rate = _TTY_TICK
        if (v := os.environ.get("TTY_DISPLAY_RATE", "")).isdigit() and int(v) > 0:
            self.rate = int(v) / 1000
        if (v := os.environ.get("BUILDKIT_TTY_LOG_LINES", "")).isdigit() and int(v) > 0:
            self.log_lines = int(v)
        else:
            self.log_lines = _TTY_LOG_LINES
        self._order: list[VertexView] = []  # started steps, in the order they started
        self._drawn = 0  # lines of the last frame (to move up over them)
        self._last_draw = 0.0
        self._first_start: float | None = None
        self._closed = False
        self._wake = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="tty-progress", daemon=True)
        self._ticker.start()

    def _size(self) -> tuple[int, int]:
        try:
            size = os.get_terminal_size(self.out.fileno())
            if size.columns > 0 and size.lines > 0:
                return size.columns, size.lines
        except (OSError, ValueError, AttributeError):
            pass
        cols, lines = shutil.get_terminal_size((80, 10))
        return cols or 80, lines or 10

    def _tick(self) -> None:
        while not self._wake.wait(self.rate):
            with self.lock:
                if self._closed:
                    return
                if any(v.running for v in self._order):
                    self._draw(final=False)

    def _changed(self) -> None:
        if time.monotonic() - self._last_draw >= _TTY_EVENT_INTERVAL:
            self._draw(final=False)

    def on_vertex(self, v: VertexView) -> None:
        if v.started is not None and v not in self._order:
            self._order.append(v)
            if self._first_start is None or v.started < self._first_start:
                self._first_start = v.started
        self._changed()

    def on_log(self, v: VertexView, line: str, timestamp: float) -> None:
        self._changed()

    def on_status(self, v: VertexView, s: StatusView) -> None:
        self._changed()

    def on_warning(self, v: VertexView, record: dict[str, Any]) -> None:
        self._changed()

    def on_cache_miss(self, v: VertexView) -> None:
        self._changed()

    def _lines(self, now: float, final: bool) -> list[_Line]:
        out: list[_Line] = []
        for v in self._order:
            name = v.name.replace("\t", " ")
            if v.error:
                name = "ERROR " + name
            if v.cached:
                name = "CACHED " + name
            took = (v.completed or now) - (v.started or now)
            color = "" if v.completed is None else _RED if v.error else _BLUE
            out.append(_Line(name, took, color))
            if v.miss and v.running:
                out.append(_Line("=> " + CACHE_MISS_PREFIX + v.miss, None, _YELLOW))
            for s in v.statuses.values():
                amount = status_amount(s)
                text = "=> " + s.id + (f"\0{amount}" if amount else "")
                took = (s.completed or now) - (s.started or now)
                out.append(_Line(text, took, "" if s.completed is None else _BLUE))
            for w in v.warnings:
                span = (v.completed or now) - (v.started or now)
                out.append(_Line("WARN: " + w, span, _YELLOW))
            if v.running and not final:
                for line in v.logs[-self.log_lines:]:
                    out.append(_Line(line, None, _FAINT))
        return out

    def _render(self, line: _Line, width: int) -> str | None:
        if line.seconds is None:  # a log line of a running step
            text = f" => => # {line.text}"[: width - 1]
            return text.ljust(width - 1)
        seconds = 0.0 if line.seconds < 0.05 else line.seconds
        timer = f" {seconds:3.1f}s"
        name, _, amount = line.text.partition("\0")
        # as buildx: the timer ends one column short of the edge (it counts its newline)
        left = width - 4 - len(timer) - 2
        if amount and left + len(amount) > 20:
            left -= len(amount) + 1
        else:
            amount = ""
        if left < 12:  # too narrow to show anything useful
            return None
        text = " => " + name[:left] + (f" {amount}" if amount else "")
        return f"{text:<{width - len(timer) - 2}} {timer}"

    def _draw(self, *, final: bool) -> None:
        width, height = self._size()
        now = time.time()
        lines = self._lines(now, final)
        if not final:  # the newest lines that fit, as buildx wraps
            lines = lines[max(0, len(lines) - max(0, height - 2)):]
        total = len(self.vertices)
        done = sum(1 for v in self.vertices.values() if v.completed is not None)
        start = self._first_start if self._first_start is not None else self.t0
        head = f"[+] Building {now - start:.1f}s ({done}/{total})"
        if final and total and done == total:
            head += " FINISHED"
        desc = f"{self.builder[1]}:{self.builder[0]}" if self.builder else ""
        head = f"{head:<{width - len(desc) - 2}} {desc}" if desc else f"{head:<{width - 1}}"
        frame = ["\x1b[?25l", "\x1b[1A" * self._drawn, "\r", head[:width], "\n"]
        count = 0
        for line in lines:
            text = self._render(line, width)
            if text is None:
                continue
            if line.color and self.color:
                text = f"{line.color}{text}{_RESET}"
            frame.append(text + "\n")
            count += 1
        if self._drawn > count:  # blank what the previous, longer frame left below
            extra = self._drawn - count
            frame.append((" " * (width - 1) + "\n") * extra)
            frame.append("\x1b[1A" * extra)
        frame.append("\x1b[?25h")
        self._drawn = count + 1
        self.out.write("".join(frame))
        self.out.flush()
        self._last_draw = time.monotonic()

    def close(self) -> None:
        self._wake.set()
        with self.lock:
            if self._closed:
                return
            self._closed = True
            self._draw(final=True)
        self._ticker.join(timeout=1)


def resolve_mode(mode: str) -> str:
    """buildx: ``BUILDKIT_PROGRESS`` replaces ``auto`` (given or not)."""
    env = os.environ.get("BUILDKIT_PROGRESS", "")
    return env if mode == "auto" and env in MODES else mode


def make_display(mode: str, out: TextIO | None = None,
                 builder: tuple[str, str] | None = None) -> Display:
    stream = out or sys.stderr
    mode = resolve_mode(mode)
    if mode == "auto":
        mode = "tty" if _is_tty(stream) else "plain"
    if mode == "plain":
        return PlainDisplay(stream, builder)
    if mode == "rawjson":
        return RawJSONDisplay(stream)
    if mode == "tty":
        if not _is_tty(stream):  # as buildx: a live screen needs a terminal
            raise UsageError("failed to get console: provided file is not a console",
                             hint="use --progress plain (or auto) when the output is not a "
                                  "terminal")
        return TTYDisplay(stream, builder)
    return QuietDisplay(stream)


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
