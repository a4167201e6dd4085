"""Why a step ran: compare a cache miss with the previous run of the same step.

Cache keys alone cannot say what changed: a new key is just a new hash. So every step that
runs is remembered under a stable *slot* (``step_slot``: the Dockerfile and the step's
stage and index, from its progress name, not its command) in the cache database's
``steps`` table, with its vertex key and a small summary its op handler gives. The
cache-map digest and the input links of that key are already in the ``keys`` / ``links``
tables. On the next miss of the slot the solver compares, cheapest first:

1. no earlier run of the slot: "no cache for this step yet";
2. the op's cache-map digest differs: the handler's ``describe_change(ctx, summary)``
   names what ("command changed", "build arg VERSION changed"), or a generic line;
3. an input link differs: a definition-keyed input is a parent step that was rebuilt
   or changed; a content-keyed input (COPY source, read-only mount) asks the handler
   that produced it, ``describe_output_change(old, new)`` (the local source names the
   context files), else "files from <parent> changed".

Nothing here runs for a cached step: lookups happen only when a step is about to run,
and a step that ran writes one row. Handlers' optional hooks are documented in
``solver/worker.py`` (``ExplainsMisses``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from buildkit_py.solver.cache import CacheManager, KeyLink
from buildkit_py.solver.cache_key import KeyInput
from buildkit_py.solver.vertex import Vertex
from buildkit_py.solver.worker import OpContext

_log = logging.getLogger(__name__)

NO_CACHE_YET = "no cache for this step yet"
PRUNED = "no cache for this step (its earlier result was pruned)"
RESULT_GONE = "its cached result is gone (pruned or removed)"
NO_CACHE_BUILD = "cache disabled (--no-cache)"
NO_CACHE_STEP = "cache disabled for this step (--no-cache-filter)"
OP_CHANGED = "the step's definition changed"
MAX_PARTS = 3
METADATA_KEY = "bkpy.cache.misses"

# "[base 2/4] RUN make" -> "[base 2]": stage and index, not the step count (adding a step
# at the end must not move the others) nor the command (that is what may change).
_STEP_NAME = re.compile(r"^\[(?P<scope>[^\]]*?) ?(?P<index>\d+)/\d+\]")


def step_slot(vertex: Vertex) -> str:
    """A stable name for "the same step" across builds: the source file of its location
    and its ``[stage N/M]`` name prefix without M; the whole name for other vertices."""
    m = _STEP_NAME.match(vertex.name)
    core = f"[{m['scope']} {m['index']}]".replace("[ ", "[") if m else vertex.name
    where = vertex.location.filename if vertex.location is not None else ""
    return f"{where}|{core}"


@dataclass(frozen=True, slots=True)
class InputView:
    """What the comparison needs of one input of the step."""

    name: str
    ran: bool  # the input step executed in this build
    handler: Any  # its op handler (may offer ``describe_output_change``)


def no_cache_reason(vertex: Vertex, build_no_cache: bool) -> str:
    return NO_CACHE_BUILD if build_no_cache or not vertex.ignore_cache else NO_CACHE_STEP


def summarize(handler: Any, ctx: OpContext) -> str:
    """The handler's ``change_summary`` of its op ("" when it offers none or fails)."""
    fn = getattr(handler, "change_summary", None)
    if fn is None:
        return ""
    try:
        return str(fn(ctx))
    except Exception:
        _log.debug("change_summary failed", exc_info=True)
        return ""


def explain_miss(
    cache: CacheManager,
    slot: str,
    vkey: str,
    cachemap_digest: str,
    links: Sequence[KeyInput],
    inputs: Sequence[InputView],
    handler: Any,
    ctx: OpContext,
) -> str | None:
    """Why the step in ``slot`` (key ``vkey``) was not cached, or None to say nothing."""
    if hasattr(handler, "miss_reason"):  # ops that never hit the cache by design
        fixed = handler.miss_reason
        return None if fixed is None else str(fixed)
    prev = cache.step(slot)
    if prev is None:
        return NO_CACHE_YET
    if prev.key == vkey:
        return RESULT_GONE
    old = cache.links(prev.edge_key)
    parts: list[str] = []
    if old is None or old[0] != cachemap_digest:
        change = _describe_change(handler, ctx, prev.summary)
        if change is None and old is None:
            return PRUNED
        parts.append(change or OP_CHANGED)
    if old is not None:
        parts.extend(_input_changes(old[2], links, inputs))
    if not parts:
        parts.append("its inputs changed")
    if len(parts) > MAX_PARTS:
        parts = [*parts[:MAX_PARTS], f"{len(parts) - MAX_PARTS} more"]
    return "; ".join(parts)


def _describe_change(handler: Any, ctx: OpContext, summary: str) -> str | None:
    fn = getattr(handler, "describe_change", None)
    if fn is None or not summary:
        return None
    try:
        text = fn(ctx, summary)
    except Exception:
        _log.debug("describe_change failed", exc_info=True)
        return None
    return str(text) if text else None


def _input_changes(old: Sequence[KeyLink], new: Sequence[KeyInput],
                   inputs: Sequence[InputView]) -> list[str]:
    if len(old) != len(new):
        return ["its inputs changed"]
    out: list[str] = []
    for i, (was, now) in enumerate(zip(old, new, strict=True)):
        if was.input_key == now.key and was.selectors == now.selectors:
            continue
        view = inputs[i] if i < len(inputs) else None
        name = view.name if view is not None else f"input {i}"
        if now.content and was.content:
            text = None
            fn = getattr(view.handler, "describe_output_change", None) if view else None
            if fn is not None:
                try:
                    text = fn(was.input_key, now.key)
                except Exception:
                    _log.debug("describe_output_change failed", exc_info=True)
            out.append(str(text) if text else f"files from {name} changed")
        elif view is not None and view.ran:
            out.append(f"parent step {name} was rebuilt")
        else:
            out.append(f"parent step {name} changed")
    return out


def miss_metadata(results: Sequence[Any]) -> dict[str, Any]:
    """``{"bkpy.cache.misses": [{"vertex", "name", "reason"}, ...]}`` of the steps that ran
    in ``results`` (``SolveResult``s), for ``--metadata-file``; empty when none ran."""
    misses: list[dict[str, str]] = []
    seen: set[str] = set()
    for res in results:
        for digest, outcome in res.vertices.items():
            reason = getattr(outcome, "reason", None)
            if outcome.state == "ran" and reason and digest not in seen:
                seen.add(digest)
                misses.append({"vertex": digest, "name": outcome.name, "reason": reason})
    return {METADATA_KEY: misses} if misses else {}
