"""Imported caches (``--cache-from``): read-only cache sources a build consults after
its local records.

A source answers which keys it holds without any I/O beyond what it read once before
the solve (``existing``), knows the content checksums a consumer's key took of an input
(``checksum``: so an importing build keys a step without downloading the input), and
materializes a result on demand (``load``, blocking: fetch and unpack just that
result's layers). The job that loads it then records the key locally, so the next
build hits without the import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from buildkit_py.solver.worker import Result


class CacheSource(Protocol):
    def existing(self, keys: Sequence[str]) -> set[str]:
        """The subset of ``keys`` this source has results for (no I/O)."""
        ...

    def checksum(self, key: str, selectors: Sequence[str]) -> str | None:
        """The content checksum of edge ``key``'s result at ``selectors``, if recorded."""
        ...

    def load(self, key: str) -> Result | None:
        """The result of ``key``, materialized locally (blocking); None if unavailable."""
        ...
