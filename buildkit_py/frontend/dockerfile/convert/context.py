"""The main build context as an ``llb.local`` source, filtered to the paths used.

BuildKit only transfers what COPY/ADD/RUN --mount reference ("follow paths"), but those
paths are known only after every stage is converted, while the stages already point at
the context. :class:`MainContext` therefore hands out a placeholder node whose body is
filled in by :meth:`MainContext.finish` (BuildKit uses a mutable output the same way).
The placeholder marshals to exactly the op ``llb.local`` builds, so digests match.
A remote context (a Git checkout, an HTTP download) is already whole and is used as is.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from buildkit_py import llb
from buildkit_py.llb import ops_pb2
from buildkit_py.llb.node import InputIndexer, OpNode, Output


class _DeferredNode(OpNode):
    """Stands in for a node that is built later; delegates everything to it."""

    def __init__(self) -> None:
        super().__init__(None)
        self.target: OpNode | None = None

    def resolve(self, target: OpNode) -> None:
        self.target = target
        self.platform = target.platform
        self.meta = target.meta
        self.platform_specific = target.platform_specific

    def inputs(self) -> Sequence[Output]:
        return self.target.inputs() if self.target is not None else ()

    def fill(self, op: ops_pb2.Op, idx: InputIndexer) -> None:
        if self.target is None:  # pragma: no cover - finish() always runs before marshal
            raise RuntimeError("build context used before it was finalised")
        self.target.fill(op, idx)


def follow_paths(paths: set[str]) -> list[str]:
    """Context-relative, sorted follow paths; empty when the whole context is needed."""
    out = []
    for p in paths:
        clean = posixpath.normpath(posixpath.join("/", p))
        if clean == "/":
            return []
        out.append(clean.lstrip("/"))
    return sorted(set(out))


class MainContext:
    """The ``llb.local`` of the main context, finalised once all users are known; or a
    remote context (``remote``), which is used as it is (no follow paths, no excludes)."""

    def __init__(self, name: str, exclude: Sequence[str], session_id: str = "",
                 remote: llb.State | None = None) -> None:
        self.name = name
        self.exclude = list(exclude)
        self.session_id = session_id
        self.remote = remote
        self.paths: set[str] = set()
        self._node = _DeferredNode()

    def state(self) -> llb.State:
        if self.remote is not None:
            return self.remote
        return llb.State(output=Output(self._node))

    def use(self, path: str) -> None:
        """Record that ``path`` (context-relative, may hold wildcards) is read."""
        self.paths.add(posixpath.join("/", path))

    def finish(self) -> None:
        if self.remote is not None:
            return
        local = llb.local(
            self.name,
            exclude=self.exclude,
            follow_paths=follow_paths(self.paths),
            shared_key=self.name,
            session_id=self.session_id,
            description="[internal] load build context",
        )
        assert local.output is not None
        self._node.resolve(local.output.node)
