"""Errors raised by snapshotters, mounts, and layer diff/apply."""

from __future__ import annotations

from buildkit_py.errors import UserError


class SnapshotError(UserError):
    """A snapshot operation failed."""


class SnapshotNotFoundError(SnapshotError):
    """No snapshot with this key/name exists."""


class SnapshotExistsError(SnapshotError):
    """A snapshot with this key/name already exists."""


class SnapshotStateError(SnapshotError):
    """The snapshot is of the wrong kind for the operation (e.g. commit of a view)."""


class MountError(SnapshotError):
    """Mounting or unmounting failed."""


class LayerError(SnapshotError):
    """A layer tar is malformed or cannot be applied."""


class UnsafeLayerError(LayerError):
    """A layer entry tries to write outside the target root (tar-slip, symlink escape)."""
