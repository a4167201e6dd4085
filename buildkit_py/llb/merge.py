"""Merge and diff ops: combine filesystems as layers, or take the changes between two."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from buildkit_py.llb import ops_pb2
from buildkit_py.llb.metadata import Location, OpMeta, ProgressGroup, make_meta
from buildkit_py.llb.node import InputIndexer, OpNode, Output
from buildkit_py.llb.state import State


class MergeNode(OpNode):
    """Each input layered on the previous one; later inputs win."""

    platform_specific = False

    def __init__(self, outputs: Sequence[Output], meta: OpMeta) -> None:
        super().__init__(None, meta)
        self.outputs = list(outputs)

    def inputs(self) -> Sequence[Output]:
        return self.outputs

    def fill(self, op: ops_pb2.Op, idx: InputIndexer) -> None:
        for out in self.outputs:
            op.merge.inputs.add(input=idx.input(out))


class DiffNode(OpNode):
    """The changes that turn ``lower`` into ``upper`` (None = scratch)."""

    platform_specific = False

    def __init__(self, lower: Output | None, upper: Output | None, meta: OpMeta) -> None:
        super().__init__(None, meta)
        self.lower = lower
        self.upper = upper

    def inputs(self) -> Sequence[Output]:
        return [o for o in (self.lower, self.upper) if o is not None]

    def fill(self, op: ops_pb2.Op, idx: InputIndexer) -> None:
        op.diff.lower.input = idx.input(self.lower)
        op.diff.upper.input = idx.input(self.upper)


def merge(
    states: Sequence[State],
    *,
    description: str | Mapping[str, str] | None = None,
    progress_group: ProgressGroup | None = None,
    location: Location | Sequence[Location] | None = None,
) -> State:
    """Layer ``states`` in order (later wins); keeps the first state's values.

    Scratch inputs add nothing and are dropped; a single remaining input is returned as is.
    """
    if not states:
        return State()
    outputs = [s.output for s in states if s.output is not None]
    if len(outputs) <= 1:
        return states[0].with_output(outputs[0] if outputs else None)
    node = MergeNode(outputs, make_meta(description, False, progress_group, location))
    return states[0].with_output(Output(node))


def diff(
    lower: State,
    upper: State,
    *,
    description: str | Mapping[str, str] | None = None,
    progress_group: ProgressGroup | None = None,
    location: Location | Sequence[Location] | None = None,
) -> State:
    """The changes from ``lower`` to ``upper``; keeps ``upper``'s values.

    A diff from scratch is ``upper`` itself, so no op is added for it.
    """
    if lower.output is None:
        return upper
    node = DiffNode(lower.output, upper.output,
                    make_meta(description, False, progress_group, location))
    return upper.with_output(Output(node))
