"""A marshalled build graph: load, validate, walk and re-serialise it.

The wire form is ``ops_pb2.Definition``: serialised ops, children first, the last one
a body-less "return" op whose single input is the result; metadata and source maps are
keyed by vertex digest and are not part of any digest.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from buildkit_py.errors import SourceLocation
from buildkit_py.llb import ops_pb2
from buildkit_py.llb.digest import digest_bytes
from buildkit_py.llb.errors import InvalidDefinitionError


@dataclass(frozen=True)
class Vertex:
    """One op of a Definition with its digest and (possibly empty) metadata."""

    digest: str
    op: ops_pb2.Op
    metadata: ops_pb2.OpMetadata

    @property
    def kind(self) -> str:
        """The op body's kind: ``source``, ``exec``, ``file``, ``merge`` or ``diff``."""
        return self.op.WhichOneof("op") or ""

    @property
    def name(self) -> str:
        """The display name (``llb.customname``) or the empty string."""
        return self.metadata.description.get("llb.customname", "")


def output_indices(op: ops_pb2.Op) -> frozenset[int]:
    """Return the output indices ``op`` produces (what an Input.index may name)."""
    kind = op.WhichOneof("op")
    if kind == "exec":
        return frozenset(m.output for m in op.exec.mounts if m.output >= 0)
    if kind == "file":
        return frozenset(a.output for a in op.file.actions if a.output >= 0)
    if kind in ("source", "merge", "diff"):
        return frozenset((0,))
    return frozenset()


class Definition:
    """A validated build graph; construct with :meth:`from_bytes` or :meth:`from_proto`."""

    __slots__ = ("_head", "_ops", "_order", "_proto")

    def __init__(self, proto: ops_pb2.Definition) -> None:
        """Wrap and validate ``proto``; raises InvalidDefinitionError when malformed."""
        self._proto = proto
        self._ops: dict[str, ops_pb2.Op] = {}
        self._order: list[str] = []
        self._head: ops_pb2.Input | None = None
        self._load()

    @classmethod
    def _trusted(
        cls, proto: ops_pb2.Definition, ops: dict[str, ops_pb2.Op], head: ops_pb2.Input | None
    ) -> Definition:
        """Wrap a graph the marshaller just built (already parsed and consistent)."""
        self = cls.__new__(cls)
        self._proto = proto
        self._ops = ops
        self._order = list(ops)
        self._head = head
        return self

    @classmethod
    def from_proto(cls, proto: ops_pb2.Definition) -> Definition:
        """Wrap an ``ops_pb2.Definition`` message (validated)."""
        return cls(proto)

    @classmethod
    def from_bytes(cls, data: bytes) -> Definition:
        """Parse and validate a serialised ``ops_pb2.Definition``."""
        proto = ops_pb2.Definition()
        try:
            proto.ParseFromString(data)
        except DecodeError as exc:
            raise InvalidDefinitionError(f"cannot decode build definition: {exc}") from None
        return cls(proto)

    def to_bytes(self) -> bytes:
        """Serialise deterministically (same graph -> same bytes)."""
        return self._proto.SerializeToString(deterministic=True)

    @property
    def proto(self) -> ops_pb2.Definition:
        """The underlying message (treat as read-only)."""
        return self._proto

    @property
    def head(self) -> ops_pb2.Input | None:
        """The result: the return op's input, or None when the result is scratch."""
        return self._head

    @property
    def head_digest(self) -> str | None:
        """Digest of the vertex producing the result, or None for scratch."""
        return self._head.digest if self._head is not None else None

    def __len__(self) -> int:
        """Number of vertices (the return op not counted)."""
        return len(self._order)

    def __contains__(self, digest: object) -> bool:
        return digest in self._ops

    def __getitem__(self, digest: str) -> ops_pb2.Op:
        """The op with vertex digest ``digest``."""
        return self._ops[digest]

    def digests(self) -> list[str]:
        """Vertex digests, inputs before their consumers."""
        return list(self._order)

    def metadata(self, digest: str) -> ops_pb2.OpMetadata:
        """Metadata of a vertex (an empty message when none was attached)."""
        md = self._proto.metadata
        return md[digest] if digest in md else ops_pb2.OpMetadata()

    def vertex(self, digest: str) -> Vertex:
        """The Vertex for ``digest``."""
        return Vertex(digest, self._ops[digest], self.metadata(digest))

    def vertices(self) -> Iterator[Vertex]:
        """Iterate vertices, inputs before their consumers."""
        for d in self._order:
            yield self.vertex(d)

    def locations(self, digest: str) -> list[SourceLocation]:
        """Source ranges (e.g. Dockerfile lines) that produced ``digest``, with their text."""
        src = self._proto.source
        if digest not in src.locations:
            return []
        out: list[SourceLocation] = []
        for loc in src.locations[digest].locations:
            info = src.infos[loc.source_index]
            # split as BuildKit does for its snippets (a final newline gives an empty line)
            text = info.data.decode("utf-8", "replace").split("\n")
            for r in loc.ranges:
                start, end = r.start.line, max(r.end.line, r.start.line)
                lines = tuple(text[start - 1 : end]) if start >= 1 else ()
                out.append(SourceLocation(info.filename, start, end, lines, source=text))
        return out

    # -------------------------------------------------------------- validation

    def _load(self) -> None:
        defs = self._proto.def_
        if not defs:
            raise InvalidDefinitionError("build definition is empty (no return op)")
        for i, raw in enumerate(defs):
            op = ops_pb2.Op()
            try:
                op.ParseFromString(raw)
            except DecodeError as exc:
                raise InvalidDefinitionError(f"op #{i} cannot be decoded: {exc}") from None
            if i == len(defs) - 1:
                self._load_return(op)
                break
            if op.WhichOneof("op") is None:
                raise InvalidDefinitionError(f"op #{i} has no body (only the last op may)")
            dgst = digest_bytes(raw)
            if dgst in self._ops:
                raise InvalidDefinitionError(f"op {dgst} appears twice")
            self._ops[dgst] = op
            self._order.append(dgst)
        for dgst in self._order:
            self._check_op(dgst, self._ops[dgst])
        if self._head is not None:
            self._check_input("return op", self._head)
        for dgst in self._proto.metadata:
            if dgst not in self._ops:
                raise InvalidDefinitionError(f"metadata for unknown op {dgst}")
        self._check_sources()
        self._check_acyclic()

    def _load_return(self, op: ops_pb2.Op) -> None:
        if op.WhichOneof("op") is not None:
            raise InvalidDefinitionError(
                f"last op must be the return op (no body), got a {op.WhichOneof('op')} op"
            )
        if len(op.inputs) > 1:
            raise InvalidDefinitionError(
                f"return op must have at most one input, got {len(op.inputs)}"
            )
        self._head = op.inputs[0] if op.inputs else None

    def _check_input(self, who: str, inp: ops_pb2.Input) -> None:
        target = self._ops.get(inp.digest)
        if target is None:
            raise InvalidDefinitionError(f"{who} refers to unknown input {inp.digest!r}")
        if inp.index not in output_indices(target):
            raise InvalidDefinitionError(
                f"{who} uses output {inp.index} of {inp.digest}, which has outputs "
                f"{sorted(output_indices(target))}"
            )

    def _check_op(self, dgst: str, op: ops_pb2.Op) -> None:
        who = f"op {dgst}"
        for inp in op.inputs:
            self._check_input(who, inp)
        n = len(op.inputs)

        def index(what: str, value: int, limit: int, allow_scratch: bool = True) -> None:
            if not (-1 if allow_scratch else 0) <= value < limit:
                raise InvalidDefinitionError(
                    f"{who}: {what} index {value} out of range (op has {n} inputs)"
                )

        kind = op.WhichOneof("op")
        if kind == "exec":
            outputs = [m.output for m in op.exec.mounts if m.output >= 0]
            if len(set(outputs)) != len(outputs):
                raise InvalidDefinitionError(f"{who}: two mounts share an output index")
            for m in op.exec.mounts:
                index(f"mount {m.dest!r} input", m.input, n)
            if not op.exec.meta.args:
                raise InvalidDefinitionError(f"{who}: exec op has no command")
        elif kind == "file":
            if not op.file.actions:
                raise InvalidDefinitionError(f"{who}: file op has no actions")
            for i, a in enumerate(op.file.actions):
                # Action i may read the op inputs and the results of actions 0..i-1.
                index(f"action {i} input", a.input, n + i)
                index(f"action {i} secondary input", a.secondary_input, n + i)
        elif kind == "merge":
            if not op.merge.inputs:
                raise InvalidDefinitionError(f"{who}: merge op has no inputs")
            for mi in op.merge.inputs:
                index("merge input", mi.input, n, allow_scratch=False)
        elif kind == "diff":
            index("diff lower", op.diff.lower.input, n)
            index("diff upper", op.diff.upper.input, n)

    def _check_sources(self) -> None:
        src = self._proto.source
        for dgst, locs in src.locations.items():
            if dgst not in self._ops:
                raise InvalidDefinitionError(f"source location for unknown op {dgst}")
            for loc in locs.locations:
                if not 0 <= loc.source_index < len(src.infos):
                    raise InvalidDefinitionError(
                        f"source location of {dgst} names source file #{loc.source_index}, "
                        f"but there are {len(src.infos)}"
                    )

    def _check_acyclic(self) -> None:
        check_acyclic({d: [i.digest for i in op.inputs] for d, op in self._ops.items()})


def check_acyclic(edges: Mapping[str, Sequence[str]]) -> None:
    """Raise InvalidDefinitionError if ``edges`` (vertex -> inputs) has a cycle."""
    # Digests embed input digests, so a cycle means forged bytes; an iterative
    # three-colour DFS keeps deep graphs off the Python recursion limit.
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    for root in edges:
        if root in state:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(edges[root]))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                continue
            seen = state.get(nxt)
            if seen == 1:
                raise InvalidDefinitionError(f"build definition has a cycle through {nxt}")
            if seen is None:
                state[nxt] = 1
                stack.append((nxt, iter(edges.get(nxt, ()))))
