"""Snapshot helpers for op handlers: mount results, create and commit layers."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from buildkit_py.snapshot import Compression, DBSnapshotter, mounted
from buildkit_py.snapshot.mount import MountPoints
from buildkit_py.worker.results import LocalResult, SnapshotResult, WorkerResult


def new_key(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def is_step_layer(key: str) -> bool:
    """Whether snapshot ``key`` is a layer a step committed (``new_key("layer")``), as
    opposed to one found again by name (an unpacked image layer)."""
    return key.startswith("layer-")


class Snapshots:
    """Thin layer over a snapshotter with the worker's naming and mount habits."""

    def __init__(self, sn: DBSnapshotter, tmp_root: Path) -> None:
        self.sn = sn
        self.tmp_root = tmp_root
        tmp_root.mkdir(parents=True, exist_ok=True)
        self._points = MountPoints(tmp_root)

    def close(self) -> None:
        self._points.close()

    @contextlib.contextmanager
    def read(self, result: WorkerResult | None) -> Iterator[Path]:
        """Mount ``result`` read-only (an empty dir for scratch) for the block."""
        if isinstance(result, LocalResult):
            yield result.path
            return
        if result is None or result.key is None:
            empty = Path(tempfile.mkdtemp(prefix="scratch-", dir=self.tmp_root))
            try:
                yield empty
            finally:
                shutil.rmtree(empty, ignore_errors=True)
            return
        key = new_key("view")
        mounts = self.sn.view(key, result.key)
        try:
            with mounted(mounts, self._points) as path:
                yield path
        finally:
            self.sn.remove(key)

    @contextlib.contextmanager
    def write(self, parent: WorkerResult | None, *, commit: bool = True
              ) -> Iterator[ActiveLayer]:
        """A writable layer on ``parent``, mounted for the block.

        On a clean exit it is unmounted and committed (``layer.result``) unless
        ``commit`` is False or the block set ``layer.discard``; otherwise removed.
        """
        parent_key = parent.key if isinstance(parent, SnapshotResult) else None
        layer = ActiveLayer(new_key("active"), parent_key)
        mounts = self.sn.prepare(layer.key, parent_key)
        try:
            with mounted(mounts, self._points) as path:
                layer.path = path
                yield layer
            if commit and not layer.discard:
                name = new_key("layer")
                self.sn.commit(name, layer.key)
                layer.result = SnapshotResult(name, self.sn.usage(name).size)
        finally:
            if layer.result is None:
                self.sn.remove(layer.key)

    def chain(self, result: SnapshotResult) -> list[str]:
        """Committed keys from the bottom layer up to ``result``."""
        keys: list[str] = []
        key = result.key
        while key is not None:
            keys.append(key)
            key = self.sn.stat(key).parent
        keys.reverse()
        return keys

    def layer_from_tar(self, parent: SnapshotResult | None, tar: BinaryIO) -> SnapshotResult:
        """Commit a new layer on ``parent`` holding the changes of an (uncompressed) tar."""
        key = new_key("active")
        self.sn.prepare(key, parent.key if parent else None)
        try:
            self.sn.apply_layer(key, tar)
            name = new_key("layer")
            self.sn.commit(name, key)
        except BaseException:
            self.sn.remove(key)
            raise
        return SnapshotResult(name, self.sn.usage(name).size)

    def rebase(self, base: SnapshotResult, layers: list[str]) -> SnapshotResult:
        """Replay committed ``layers`` (each a diff vs its parent) on top of ``base``."""
        current = base
        for layer in layers:
            with tempfile.TemporaryFile(dir=self.tmp_root) as tar:
                self.sn.export_layer(layer, tar, compression=Compression.UNCOMPRESSED)
                tar.seek(0)
                current = self.layer_from_tar(current, tar)
        return current


class ActiveLayer:
    def __init__(self, key: str, parent: str | None) -> None:
        self.key = key
        self.parent = parent
        self.path = Path(os.devnull)
        self.discard = False
        self.result: SnapshotResult | None = None
