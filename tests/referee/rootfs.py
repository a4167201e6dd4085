"""Apply layer tars (with OCI whiteouts) in memory and describe the resulting file metadata."""

from __future__ import annotations

import hashlib
import io
import posixpath
import tarfile
from dataclasses import dataclass
from typing import Any

_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"


@dataclass
class Entry:
    type: str  # "file", "dir" or "symlink"
    mode: int
    uid: int
    gid: int
    size: int = 0
    sha256: str = ""
    target: str = ""


def _clean(name: str) -> str:
    return posixpath.normpath("/" + name.rstrip("/"))


def _drop_below(tree: dict[str, Entry], path: str, keep_self: bool) -> None:
    prefix = path.rstrip("/") + "/"
    for key in [k for k in tree if k.startswith(prefix) or (k == path and not keep_self)]:
        del tree[key]


def apply_layers(layers: list[bytes]) -> dict[str, Entry]:
    """The final filesystem of stacking ``layers`` (uncompressed tars) bottom to top."""
    tree: dict[str, Entry] = {"/": Entry("dir", 0o755, 0, 0)}
    for layer in layers:
        with tarfile.open(fileobj=io.BytesIO(layer)) as tf:
            entries = []
            # Whiteouts hide lower layers only, so apply them all before this layer's entries.
            for m in tf.getmembers():
                path = _clean(m.name)
                base = posixpath.basename(path)
                parent = posixpath.dirname(path)
                if base == _OPAQUE:
                    _drop_below(tree, parent, True)
                elif base.startswith(_WHITEOUT):
                    _drop_below(tree, posixpath.join(parent, base[len(_WHITEOUT):]), False)
                else:
                    entries.append((m, path))
            for m, path in entries:
                _put(tree, tf, m, path)
    return tree


def _put(tree: dict[str, Entry], tf: tarfile.TarFile, m: tarfile.TarInfo, path: str) -> None:
    old = tree.get(path)
    if old is not None and not (old.type == "dir" and m.isdir()):
        _drop_below(tree, path, False)
    if m.isdir():
        tree[path] = Entry("dir", m.mode, m.uid, m.gid)
    elif m.issym():
        tree[path] = Entry("symlink", m.mode, m.uid, m.gid, target=m.linkname)
    elif m.islnk():
        # A hard link shares the content of an entry already in the tree.
        src = tree[_clean(m.linkname)]
        tree[path] = Entry("file", m.mode, m.uid, m.gid, src.size, src.sha256)
    elif m.isfile():
        f = tf.extractfile(m)
        data = f.read() if f is not None else b""
        tree[path] = Entry("file", m.mode, m.uid, m.gid, len(data),
                           hashlib.sha256(data).hexdigest())
    else:
        tree[path] = Entry("other", m.mode, m.uid, m.gid)


def describe(tree: dict[str, Entry], path: str) -> dict[str, Any] | None:
    """The recorded form of one path: None when absent."""
    entry = tree.get(posixpath.normpath(path))
    if entry is None:
        return None
    out: dict[str, Any] = {"type": entry.type, "mode": f"{entry.mode & 0o7777:04o}",
                           "uid": entry.uid, "gid": entry.gid}
    if entry.type == "file":
        out["size"] = entry.size
        out["sha256"] = entry.sha256
    elif entry.type == "symlink":
        out["target"] = entry.target
    return out
