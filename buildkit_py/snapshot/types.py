"""The snapshotter interface and the records it returns.

Semantics follow containerd: a snapshot is *active* (writable, from ``prepare``),
a *view* (read-only, from ``view``) or *committed* (immutable, from ``commit``;
only committed snapshots can be parents). Keys and names share one namespace.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from buildkit_py.snapshot.compression import Compression, LayerDescriptor, Writable
from buildkit_py.snapshot.mount import Mount


class Kind(enum.StrEnum):
    ACTIVE = "active"
    VIEW = "view"
    COMMITTED = "committed"


@dataclass(frozen=True)
class Info:
    key: str
    parent: str | None
    kind: Kind
    created: float
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Usage:
    size: int
    inodes: int


@dataclass(frozen=True)
class ApplyResult:
    """What applying a layer produced: the diff ID (sha256 of the uncompressed tar),
    the digest/size of the stream as read (compressed blob), and the compression."""

    diff_id: str
    digest: str
    size: int
    compression: Compression


class Snapshotter(Protocol):
    """What the solver, executor and exporters rely on."""

    name: str
    root: Path

    def prepare(
        self, key: str, parent: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Mount]: ...

    def view(
        self, key: str, parent: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Mount]: ...

    def mounts(self, key: str) -> list[Mount]: ...

    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None) -> None: ...

    def remove(self, key: str) -> None: ...

    def stat(self, key: str) -> Info: ...

    def usage(self, key: str) -> Usage: ...

    def walk(self) -> Iterator[Info]: ...

    def export_layer(
        self,
        key: str,
        dest: Writable,
        *,
        compression: Compression = Compression.GZIP,
        level: int | None = None,
        source_date_epoch: int | None = None,
    ) -> LayerDescriptor: ...

    def apply_layer(self, key: str, stream: BinaryIO) -> ApplyResult: ...

    def close(self) -> None: ...
