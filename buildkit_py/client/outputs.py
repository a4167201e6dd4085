"""Exporter output a remote build sends back, written on the client.

The daemon streams each client-side output (``local``/``tar``/``oci``/``docker``) as zstd
frames of either one file (a tarball, written as is, ``-`` meaning stdout) or a tar
stream of a directory, unpacked here with the modes and owners the build gave it but
never outside its destination.
"""

from __future__ import annotations

import os
import queue
import sys
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

from buildkit_py.api.outputs import OutputSpec
from buildkit_py.api.request import BuildRequest
from buildkit_py.session.client import OutputOpener


def output_opener(req: BuildRequest) -> OutputOpener:
    """Writers for the outputs of ``req``, by their index in it."""
    return lambda index, kind: ReceivedOutput(req.outputs[index], kind)


class ReceivedOutput:
    """Writes one exporter output arriving in zstd frames to its client-side dest."""

    def __init__(self, spec: OutputSpec, kind: str) -> None:
        import zstandard  # reason: only builds with client-side outputs need it

        self._decomp = zstandard.ZstdDecompressor()
        self.error = ""
        dest = spec.dest
        self._file: IO[bytes] | None = None
        self._pipe: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        if kind == "file":
            if dest in (None, "-"):
                self._file, self._close = sys.stdout.buffer, False
            else:
                path = Path(dest)
                path.parent.mkdir(parents=True, exist_ok=True)
                self._file, self._close = open(path, "wb"), True
        else:
            target = Path(dest or ".")
            target.mkdir(parents=True, exist_ok=True)
            self._pipe = queue.Queue(maxsize=8)
            self._thread = threading.Thread(target=self._extract, args=(target,), daemon=True)
            self._thread.start()

    def _extract(self, target: Path) -> None:
        assert self._pipe is not None
        reader = _QueueReader(self._pipe)
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tf:  # type: ignore[call-overload]
                tf.extractall(target, numeric_owner=True, filter=_inside(target))
        except Exception as err:
            self.error = f"{type(err).__name__}: {err}"
            reader.drain()

    def write(self, frame: bytes) -> None:
        data = self._decomp.decompress(frame)
        if self._file is not None:
            try:
                self._file.write(data)
            except OSError as err:
                self.error = self.error or str(err)
        elif self._pipe is not None:
            self._pipe.put(data)

    def finish(self) -> str:
        if self._file is not None:
            try:
                self._file.flush()
                if self._close:
                    self._file.close()
            except OSError as err:
                self.error = self.error or str(err)
        if self._pipe is not None and self._thread is not None:
            self._pipe.put(None)
            self._thread.join()
        return self.error


def _inside(target: Path) -> Callable[[tarfile.TarInfo, str], tarfile.TarInfo]:
    """Keep members (modes and owners as built) but never write outside ``target``."""
    base = os.path.realpath(target)

    def check(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
        name = os.path.normpath(member.name)
        path = os.path.realpath(os.path.join(base, name))
        if name.startswith(("/", "..")) or not (path == base or path.startswith(base + "/")):
            raise tarfile.OutsideDestinationError(member, path)
        return member

    return check


class _QueueReader:
    """A read-only file over a queue of byte chunks (None = end)."""

    def __init__(self, q: queue.Queue[bytes | None]) -> None:
        self._q = q
        self._buf = b""
        self._eof = False

    def read(self, n: int = -1) -> bytes:
        while not self._eof and (n < 0 or len(self._buf) < n):
            item = self._q.get()
            if item is None:
                self._eof = True
            else:
                self._buf += item
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def drain(self) -> None:
        while not self._eof:
            if self._q.get() is None:
                self._eof = True
