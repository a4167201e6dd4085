"""Snapshots (overlayfs layers or full copies), mounts, layer diff and apply."""

from buildkit_py.snapshot.apply import apply_layer
from buildkit_py.snapshot.base import DBSnapshotter
from buildkit_py.snapshot.compression import (
    DOCKER_MEDIA_TYPES,
    OCI_MEDIA_TYPES,
    Compression,
    HashingWritable,
    LayerDescriptor,
    LayerReader,
    LayerWriter,
    Writable,
)
from buildkit_py.snapshot.diff import ChangeKind, EntryKind, LayerEntry, diff, overlay_changes
from buildkit_py.snapshot.errors import (
    LayerError,
    MountError,
    SnapshotError,
    SnapshotExistsError,
    SnapshotNotFoundError,
    SnapshotStateError,
    UnsafeLayerError,
)
from buildkit_py.snapshot.factory import open_snapshotter, overlay_supported
from buildkit_py.snapshot.layer_tar import export_layer, write_layer_tar
from buildkit_py.snapshot.mount import Mount, mount_all, mounted, unmount
from buildkit_py.snapshot.native import CopySnapshotter
from buildkit_py.snapshot.overlay import OverlaySnapshotter
from buildkit_py.snapshot.types import ApplyResult, Info, Kind, Snapshotter, Usage

__all__ = [
    "DOCKER_MEDIA_TYPES",
    "OCI_MEDIA_TYPES",
    "ApplyResult",
    "ChangeKind",
    "Compression",
    "CopySnapshotter",
    "DBSnapshotter",
    "EntryKind",
    "HashingWritable",
    "Info",
    "Kind",
    "LayerDescriptor",
    "LayerEntry",
    "LayerError",
    "LayerReader",
    "LayerWriter",
    "Mount",
    "MountError",
    "OverlaySnapshotter",
    "SnapshotError",
    "SnapshotExistsError",
    "SnapshotNotFoundError",
    "SnapshotStateError",
    "Snapshotter",
    "UnsafeLayerError",
    "Usage",
    "Writable",
    "apply_layer",
    "diff",
    "export_layer",
    "mount_all",
    "mounted",
    "open_snapshotter",
    "overlay_changes",
    "overlay_supported",
    "unmount",
    "write_layer_tar",
]
