"""Exporter output a remote build sends back, written on the client.

The daemon streams each client-side output (``local``/``tar``/``oci``/``docker``) as zstd
frames of either one file (a tarball, written as is, ``-`` meaning stdout) or a tar
stream of a directory, unpacked here with the modes and owners the build gave it but
never outside its destination. A ``--cache-to type=local`` layout arrives as a tar of
the blobs the destination lacks and an ``index.json`` naming the new cache, merged into
the destination's own (its other tags stay), as the embedded builder writes it.
"""

from __future__ import annotations

import hashlib
import json
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
from buildkit_py.session.client import OutputOpener, OutputWriter


def output_opener(req: BuildRequest) -> OutputOpener:
    """Writers for the outputs of ``req``, by their index in it (a ``type=local``
    ``--cache-to``: kind ``cache``, numbered after the outputs)."""

    def open_output(index: int, kind: str) -> OutputWriter:
        if kind == "cache":
            k = index - len(req.outputs)
            if not 0 <= k < len(req.cache_to) or req.cache_to[k].get("type") != "local":
                raise OSError(f"no --cache-to type=local number {k + 1}")
            return ReceivedCache(Path(req.cache_to[k]["dest"]))
        return ReceivedOutput(req.outputs[index], kind)

    return open_output


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


# one read-modify-write of a cache's index.json at a time (the nodes of a multi-node build
# deliver their parts of one cache to one dest at once, each under its own tag)
_INDEX_LOCK = threading.Lock()


class ReceivedCache:
    """Merges a cache layout arriving as a tar stream into the OCI layout ``dest``: each
    blob checked against its name and renamed into place, then ``index.json`` (entries
    of other tags kept) and ``oci-layout``."""

    def __init__(self, dest: Path) -> None:
        import zstandard  # reason: only builds with client-side outputs need it

        self._decomp = zstandard.ZstdDecompressor()
        self.dest = dest
        self.error = ""
        self._index: bytes | None = None
        self._pipe: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._extract, daemon=True)
        self._thread.start()

    def _extract(self) -> None:
        reader = _QueueReader(self._pipe)
        try:
            blobs = self.dest / "blobs" / "sha256"
            blobs.mkdir(parents=True, exist_ok=True)
            with tarfile.open(fileobj=reader, mode="r|") as tf:  # type: ignore[call-overload]
                for member in tf:
                    if not member.isfile():
                        continue
                    f = tf.extractfile(member)
                    assert f is not None
                    if member.name == "index.json":
                        self._index = f.read()
                    elif member.name.startswith("blobs/sha256/"):
                        self._blob(blobs, member.name.rpartition("/")[2], f)
        except Exception as err:
            self.error = f"{type(err).__name__}: {err}"
            reader.drain()

    @staticmethod
    def _blob(blobs: Path, hexpart: str, f: IO[bytes]) -> None:
        if len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
            raise ValueError(f"not a blob name: {hexpart!r}")
        target = blobs / hexpart
        # unique: the nodes of a multi-node build may send one blob to one dest at once
        tmp = target.with_name(f"{hexpart}.{os.getpid()}-{threading.get_ident()}.part")
        h = hashlib.sha256()
        with open(tmp, "wb") as out:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != hexpart:
            tmp.unlink()
            raise ValueError(f"blob sha256:{hexpart} arrived corrupted")
        tmp.replace(target)

    def _merge_index(self) -> None:
        if self._index is None:
            raise ValueError("the cache arrived without index.json")
        new = json.loads(self._index)
        path = self.dest / "index.json"
        try:
            index = json.loads(path.read_bytes())
            if not isinstance(index, dict):
                raise ValueError("not an object")
        except FileNotFoundError:
            index = new
        else:
            names = {_ref_name(m) for m in new.get("manifests") or []}
            kept = [m for m in index.get("manifests") or [] if _ref_name(m) not in names]
            index["manifests"] = [*kept, *(new.get("manifests") or [])]
        (self.dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        # two nodes of one multi-node build may merge into one dest at once
        tmp = path.with_name(f"index.json.{os.getpid()}-{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(index, separators=(",", ":"), sort_keys=True))
        tmp.replace(path)

    def write(self, frame: bytes) -> None:
        self._pipe.put(self._decomp.decompress(frame))

    def finish(self) -> str:
        self._pipe.put(None)
        self._thread.join()
        if not self.error:
            try:
                with _INDEX_LOCK:  # the nodes of a multi-node build: no merge lost
                    self._merge_index()
            except (OSError, ValueError) as err:
                self.error = f"{self.dest}/index.json: {err}"
        return self.error


def _ref_name(entry: object) -> object:
    ann = entry.get("annotations") if isinstance(entry, dict) else None
    return ann.get("org.opencontainers.image.ref.name") if isinstance(ann, dict) else None


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
