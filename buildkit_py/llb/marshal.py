"""Walk a graph of nodes into a Definition: children first, identical ops once."""

from __future__ import annotations

from buildkit_py.errors import BuildError
from buildkit_py.llb import ops_pb2
from buildkit_py.llb.definition import Definition
from buildkit_py.llb.digest import digest_bytes
from buildkit_py.llb.metadata import Location, merge_metadata
from buildkit_py.llb.node import OpNode, Output
from buildkit_py.llb.platform import host_platform


class _OpInputs:
    """Collects one op's inputs, reusing the index of an input named twice."""

    def __init__(self, op: ops_pb2.Op, digests: dict[int, str]) -> None:
        self._op = op
        self._digests = digests
        self._seen: dict[tuple[str, int], int] = {}

    def input(self, output: Output | None) -> int:
        if output is None:
            return -1
        key = (self._digests[id(output.node)], output.index)
        found = self._seen.get(key)
        if found is None:
            found = len(self._op.inputs)
            self._op.inputs.add(digest=key[0], index=key[1])
            self._seen[key] = found
        return found


class _Marshaller:
    def __init__(self, platform: ops_pb2.Platform) -> None:
        self.platform = platform
        self.digests: dict[int, str] = {}  # id(node) -> vertex digest
        self.defs: dict[str, bytes] = {}  # insertion order = children first
        self.ops: dict[str, ops_pb2.Op] = {}
        self.metadata: dict[str, ops_pb2.OpMetadata] = {}
        self.locations: dict[str, list[Location]] = {}
        self.infos: dict[tuple[str, bytes, str], int] = {}

    def visit(self, root: OpNode) -> str:
        # Iterative post-order so a long chain of RUNs cannot hit the recursion limit.
        stack: list[OpNode] = [root]
        while stack:
            node = stack[-1]
            if id(node) in self.digests:
                stack.pop()
                continue
            pending = [o.node for o in node.inputs() if id(o.node) not in self.digests]
            if pending:
                stack.extend(reversed(pending))
                continue
            stack.pop()
            self.digests[id(node)] = self._emit(node)
        return self.digests[id(root)]

    def _emit(self, node: OpNode) -> str:
        op = ops_pb2.Op()
        try:
            node.fill(op, _OpInputs(op, self.digests))
        except UnicodeEncodeError:
            # bytes that are not UTF-8 (kept as surrogates when the Dockerfile was decoded):
            # protobuf strings cannot carry them; BuildKit's wording
            raise BuildError("failed to marshal LLB definition: string field contains "
                             "invalid UTF-8") from None
        if node.platform_specific:
            op.platform.CopyFrom(node.platform if node.platform is not None else self.platform)
        data = op.SerializeToString(deterministic=True)
        dgst = digest_bytes(data)
        if dgst not in self.defs:
            self.defs[dgst] = data
            self.ops[dgst] = op
        md = node.meta.to_proto()
        if md is not None:
            if dgst in self.metadata:
                merge_metadata(self.metadata[dgst], md)
            else:
                self.metadata[dgst] = md
        if node.meta.locations:
            known = self.locations.setdefault(dgst, [])
            known.extend(loc for loc in node.meta.locations if loc not in known)
        return dgst

    def definition(self, head: Output | None) -> Definition:
        ret = ops_pb2.Op()
        head_input = None
        if head is not None:
            head_input = ret.inputs.add(digest=self.digests[id(head.node)], index=head.index)
        proto = ops_pb2.Definition()
        proto.def_.extend(self.defs.values())
        proto.def_.append(ret.SerializeToString(deterministic=True))
        for dgst, md in self.metadata.items():
            proto.metadata[dgst].CopyFrom(md)
        for dgst, locs in self.locations.items():
            entry = proto.source.locations[dgst]
            for loc in locs:
                key = (loc.filename, loc.data, loc.language)
                index = self.infos.get(key)
                if index is None:
                    index = self.infos[key] = len(proto.source.infos)
                    proto.source.infos.add(filename=loc.filename, data=loc.data,
                                           language=loc.language)
                pl = entry.locations.add(source_index=index)
                for start, end in loc.ranges:
                    r = pl.ranges.add()
                    r.start.line = start
                    r.end.line = end
        # Built from nodes just now, so already consistent: skip re-parsing and checks.
        return Definition._trusted(proto, self.ops, head_input)


def marshal_output(head: Output | None, platform: ops_pb2.Platform | None = None) -> Definition:
    """Marshal the graph reaching ``head`` (None = scratch) into a Definition.

    ``platform`` fills in ops that were built without one (default: the host's).
    """
    m = _Marshaller(platform if platform is not None else host_platform())
    if head is not None:
        m.visit(head.node)
    return m.definition(head)
