"""Exporter output a remote build sends back to its client.

The builder core writes client-side outputs into the build's directory on the daemon;
each goes back over the session as zstd frames: a file (a tarball) as its bytes, a
directory (also a ``--cache-to type=local`` layout, without the blobs the client's
dest already has) as a tar stream (owners, modes, times and links kept) produced on the fly,
so memory stays small however large the output is.
"""

from __future__ import annotations

import os
import queue
import stat
import tarfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from buildkit_py.api import control_pb2 as pb
from buildkit_py.api.wire import CHUNK, ZSTD_LEVEL, file_frames


@dataclass
class Delivery:
    """An exporter output written on the daemon, to be sent to the client."""

    index: int
    kind: str  # file | tar | cache (a tar of an OCI layout the client merges)
    path: Path
    lent: str = ""  # cache: the session name of the client's dest (listed before sending)
    skip: set[str] = field(default_factory=set)  # relative paths the client has already

    def skip_present(self, stats: Iterable[pb.Stat]) -> None:
        """Leave out the blobs the client's dest already has (``stats``: its listing): a
        blob is named by its digest, so one of the same name and size is the same."""
        for st in stats:
            if st.path.startswith("blobs/") and stat.S_ISREG(st.mode):
                ours = self.path / st.path
                if ours.is_file() and ours.stat().st_size == st.size:
                    self.skip.add(st.path)

    def frames(self) -> Iterator[bytes]:
        if self.kind == "file":
            return file_frames(self.path)
        return _tar_frames(self.path, self.skip)


class _QueueWriter:
    """A write-only file for tarfile that hands CHUNK-sized pieces to a queue."""

    def __init__(self, q: queue.Queue[bytes | BaseException | None]) -> None:
        self._q = q
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        self._buf += data
        while len(self._buf) >= CHUNK:
            self._q.put(bytes(self._buf[:CHUNK]))
            del self._buf[:CHUNK]
        return len(data)

    def flush_rest(self) -> None:
        if self._buf:
            self._q.put(bytes(self._buf))
            self._buf.clear()


def _tar_frames(root: Path, skip: set[str] | frozenset[str] = frozenset()
                ) -> Iterator[bytes]:
    """``root`` as a tar stream (owners, modes, times, links kept), in zstd frames,
    without the files at the relative paths ``skip``.

    A producer thread writes the tar into a bounded queue, so memory stays small
    however large the files are.
    """
    import zstandard  # reason: only builds with client-side outputs need it

    q: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=8)

    def produce() -> None:
        writer = _QueueWriter(q)
        try:
            with tarfile.open(fileobj=writer, mode="w|",  # type: ignore[call-overload]
                              format=tarfile.PAX_FORMAT) as tf:
                for dirpath, dirnames, filenames in os.walk(root):
                    dirnames.sort()
                    rel_dir = os.path.relpath(dirpath, root)
                    for name in sorted(dirnames) + sorted(filenames):
                        full = os.path.join(dirpath, name)
                        rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                        if rel in skip:
                            continue
                        tf.add(full, arcname=rel, recursive=False)
            writer.flush_rest()
            q.put(None)
        except BaseException as err:
            q.put(err)

    threading.Thread(target=produce, daemon=True, name="tar-output").start()
    comp = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    while True:
        item = q.get()
        if item is None:
            return
        if isinstance(item, BaseException):
            raise item
        yield comp.compress(item)
