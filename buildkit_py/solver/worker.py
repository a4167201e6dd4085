"""The seam between the solver and whatever builds things (the worker).

The solver schedules vertices and manages cache keys and records; the worker knows ops.
For each vertex the worker hands out an :class:`OpHandler` (like BuildKit's ``Op``):

* ``cache_map(ctx)`` describes how the op is keyed: a digest of the op itself (its body
  with inputs and non-semantic fields stripped, plus platform) and, per input, the
  selectors used from it and optionally a content-based digest function. It gets no input
  keys on purpose: the map says which inputs need *content* digests, so it must come first.
* ``exec(ctx, inputs)`` runs the op on its inputs' results and returns one result per
  output index.
* ``cancel()`` stops a running ``exec`` (kill the container); called from another thread.

All handler methods run on the solver's thread pool and may block; they should check
``ctx.cancel`` between steps. Results are references to immutable snapshots whose ``id``
the cache database stores; ``Worker.load_result(id)`` turns a cache record back into a
result, or returns None when the snapshot is gone (the solver then runs the op again).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from buildkit_py.solver.cancel import CancelToken
from buildkit_py.solver.progress import ProgressWriter
from buildkit_py.solver.vertex import Vertex


@runtime_checkable
class Result(Protocol):
    """A reference to an immutable snapshot produced by (or loaded for) an op output."""

    @property
    def id(self) -> str:
        """Stable identifier stored in cache records and given back to ``load_result``."""
        ...

    @property
    def size(self) -> int:
        """Bytes the snapshot occupies on disk (0 when unknown); shown by ``bkpy du``."""
        ...

    def release(self) -> None:
        """Drop this reference; the snapshot stays in the store until pruned."""
        ...


ContentDigestFunc = Callable[[Result, Sequence[str]], str]
"""``compute_digest(result, selectors) -> "sha256:..."``: checksum of the selected content."""


@dataclass(frozen=True, slots=True)
class CacheMapDep:
    """How one input contributes to the key.

    ``selectors`` are the paths used from the input (they narrow the key); when
    ``compute_digest`` is set the key uses the digest of the input's *content* at those
    selectors instead of the input's cache key (a "slow" key: the input must be solved
    first). Used for COPY sources and read-only bind mounts, never for an exec root.
    """

    selectors: tuple[str, ...] = ()
    compute_digest: ContentDigestFunc | None = None


@dataclass(frozen=True, slots=True)
class CacheMap:
    """An op's cache description: ``digest`` of the op itself, ``deps`` one per input.

    ``deps`` may be empty (every input keyed by its plain cache key, no selector).
    """

    digest: str
    deps: tuple[CacheMapDep, ...] = ()


@dataclass(frozen=True, slots=True)
class OpContext:
    """Per-vertex context handed to every handler call.

    ``sessions()`` returns the client sessions (whatever was passed as ``session`` to
    ``Solver.solve``) of every build currently waiting on this vertex, oldest first: a
    vertex shared by two builds may fetch context files or secrets through either.
    """

    vertex: Vertex
    cancel: CancelToken
    progress: ProgressWriter
    sessions: Callable[[], tuple[object, ...]] = tuple


class OpHandler(Protocol):
    """What the worker does for one vertex; one handler serves every build sharing it.

    A handler whose ``cache_map`` only hashes the op (exec, file, merge, diff) may set a
    class attribute ``cache_map_is_cheap = True``: the solver then calls it on its loop
    thread instead of the pool, saving a thread hop per vertex. Never set it for a map
    that does I/O (resolving images, syncing a context): it would stall every build.
    """

    def cache_map(self, ctx: OpContext) -> CacheMap:
        """Describe the op's key (may block, e.g. resolve an image tag or sync a context).

        Rules for implementers: a local-context source keys on content
        checksums of exactly the paths it selects (include patterns / follow paths), an
        image on its layers' ChainID; secret values, proxy env and other non-semantic
        fields never enter ``digest``.
        """
        ...

    def exec(self, ctx: OpContext, inputs: Sequence[Result]) -> list[Result]:
        """Run the op; ``inputs`` follow the vertex's input order; one result per output.

        Raise :class:`buildkit_py.errors.BuildError` (or any exception) on failure; the
        solver names the vertex and adds its last log lines.
        """
        ...

    def cancel(self) -> None:
        """Stop a running ``exec`` quickly (must not block); the cancel token is already set."""
        ...


class Worker(Protocol):
    """Builds vertices and owns their snapshots."""

    def resolve_op(self, vertex: Vertex) -> OpHandler:
        """The handler for ``vertex`` (cheap: no I/O; called on the solver's loop thread)."""
        ...

    def load_result(self, result_id: str) -> Result | None:
        """A new reference to a stored result, or None if it no longer exists."""
        ...


class ExplainsMisses(Protocol):
    """Optional extras of an :class:`OpHandler` that say why its step ran (see
    ``solver/explain.py``). The solver looks each up with ``getattr``; a handler offers
    any subset. They run on the pool, only for steps that run, and must not fail builds
    (exceptions are logged and ignored).

    * ``change_summary(ctx) -> str``: a small text (JSON, say) remembered with the step
      when it runs; hash values that may be secret (env values), keep names.
    * ``describe_change(ctx, old_summary) -> str | None``: the op's cache-map digest
      differs from the step's previous run, which had ``old_summary``; name what differs
      ("command changed", "build arg VERSION changed"), or None for a generic line.
    * ``describe_output_change(old, new) -> str | None``: a consumer keyed on the
      *content* of this op's output (a COPY, a read-only mount) had content digest
      ``old`` last time and ``new`` now; name what differs (a local source names the
      context files), or None.
    * ``miss_reason`` (attribute): the op never hits the cache by design; a fixed reason,
      or None to print none (a local source: the context is read on every build).
    """

    def change_summary(self, ctx: OpContext) -> str: ...

    def describe_change(self, ctx: OpContext, old_summary: str) -> str | None: ...

    def describe_output_change(self, old: str, new: str) -> str | None: ...
