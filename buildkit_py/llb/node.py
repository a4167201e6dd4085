"""Graph nodes: an op under construction, a reference to one of its outputs, and what
an op builder reads of a state it takes as an input (``FsRef``).

Op builders (exec, file, merge...) sit below ``State``: ``State.run``/``State.file``
create their nodes, so the nodes see a state only through ``FsRef``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Protocol

from buildkit_py.llb import ops_pb2
from buildkit_py.llb.metadata import NO_META, OpMeta


class InputIndexer(Protocol):
    """What a node uses while marshalling to turn an Output into an op input index."""

    def input(self, output: Output | None) -> int:
        """Index of ``output`` in the op's inputs (added if new); -1 for scratch."""
        ...


class FsRef(Protocol):
    """A filesystem result and the working dir relative paths in it resolve against
    (what a mount source or a copy source is; a ``State`` is one)."""

    @property
    def output(self) -> Output | None:
        """The op output holding the filesystem; None for scratch."""
        ...

    @property
    def cwd(self) -> str:
        """The working directory."""
        ...


class OpNode(ABC):
    """An op in the graph; concrete nodes fill the op body when marshalled."""

    # Whether the op's result depends on the platform (image sources, execs, ...).
    platform_specific = True

    def __init__(self, platform: ops_pb2.Platform | None, meta: OpMeta = NO_META) -> None:
        self.platform = platform
        self.meta = meta

    @abstractmethod
    def inputs(self) -> Sequence[Output]:
        """The outputs of other nodes this node reads."""

    @abstractmethod
    def fill(self, op: ops_pb2.Op, idx: InputIndexer) -> None:
        """Write this node's body (and inputs, via ``idx``) into ``op``."""


class Output:
    """Output ``index`` of ``node``; what a State points at."""

    __slots__ = ("index", "node")

    def __init__(self, node: OpNode, index: int = 0) -> None:
        self.node = node
        self.index = index

    def __repr__(self) -> str:
        return f"Output({type(self.node).__name__}, {self.index})"
