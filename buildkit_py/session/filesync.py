"""Context transfer over the session: the client's sender and the daemon's receiver.

The protocol (after BuildKit's filesync, over typed messages):

1. the daemon asks for a lent directory (``SyncStart``);
2. the client lists it with ``.dockerignore`` applied (ignored entries never leave the
   client), parents before children, in batches of ``Stat`` (``SyncStats``);
3. the daemon compares the listing with its copy of the previous transfer of the same
   context: entries with equal type, size, mtime and mode are kept, missing ones are
   deleted; a regular file of equal size but other mtime/mode is asked for its sha256
   first (``FileRequest(hash_only)``) and only re-sent if the content differs;
4. the client sends the requested files as zstd frames (``FileData``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from buildkit_py.api import control_pb2 as pb
from buildkit_py.api.wire import CHUNK, file_frames
from buildkit_py.errors import BuildError
from buildkit_py.frontend.dockerfile.dockerignore import IgnoreMatcher

if TYPE_CHECKING:
    import zstandard

STATS_BATCH = 512


def _sha256_file(path: str) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.digest()


# ---------------------------------------------------------------- client side


class ContextSender:
    """Lists one lent directory and serves hash and content requests for it."""

    def __init__(self, root: Path, ignore_patterns: list[str]) -> None:
        self.root = root
        self.ignore_patterns = ignore_patterns
        self._paths: list[str] = []

    def listing(self) -> Iterator[list[pb.Stat]]:
        """The filtered tree as batches of Stat (ids count from 0 across batches)."""
        matcher = IgnoreMatcher(self.ignore_patterns)
        self._paths = []
        batch: list[pb.Stat] = []
        for rel, entry in matcher.walk(self.root):
            st = entry.stat(follow_symlinks=False)
            mode = st.st_mode
            if stat.S_ISSOCK(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                continue  # not transferable, as BuildKit skips them
            link = os.readlink(entry.path) if stat.S_ISLNK(mode) else ""
            msg = pb.Stat(id=len(self._paths), path=rel, mode=mode,
                          size=st.st_size if stat.S_ISREG(mode) else 0,
                          mtime_ns=st.st_mtime_ns, linkname=link)
            self._paths.append(entry.path)
            batch.append(msg)
            if len(batch) >= STATS_BATCH:
                yield batch
                batch = []
        yield batch

    def path(self, file_id: int) -> str:
        return self._paths[file_id]

    def hashes(self, ids: list[int]) -> list[pb.FileHash]:
        return [pb.FileHash(id=i, sha256=_sha256_file(self._paths[i])) for i in ids]

    def chunks(self, file_id: int) -> Iterator[bytes]:
        """The file's content as independent zstd frames of at most CHUNK raw bytes."""
        return file_frames(self._paths[file_id])


# ---------------------------------------------------------------- daemon side


@dataclass
class SyncStats:
    """What one transfer cost: files re-sent, their raw and wire bytes."""

    files: int = 0
    raw_bytes: int = 0
    wire_bytes: int = 0
    hashed: int = 0
    kept: int = 0
    removed: int = 0
    sent_paths: list[str] = field(default_factory=list)


def _same_type(a: int, b: int) -> bool:
    return stat.S_IFMT(a) == stat.S_IFMT(b)


def _escapes(path: str) -> bool:
    return any(part in ("", ".", "..") for part in path.split("/"))


def _scan(root: str) -> dict[str, os.stat_result]:
    """lstat of everything below ``root``, by relative path (one scandir walk)."""
    found: dict[str, os.stat_result] = {}
    stack = [("", root)]
    while stack:
        prefix, path = stack.pop()
        with os.scandir(path) as it:
            for entry in it:
                rel = prefix + entry.name
                st = entry.stat(follow_symlinks=False)
                found[rel] = st
                if stat.S_ISDIR(st.st_mode):
                    stack.append((rel + "/", entry.path))
    return found


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


class ContextReceiver:
    """Brings the daemon's copy ``dest`` of a lent directory up to date with a listing."""

    def __init__(self, dest: Path, incoming: Path) -> None:
        self.dest = dest
        self.incoming = incoming
        self._dest_prefix = str(dest) + "/"
        dest.mkdir(parents=True, exist_ok=True)
        incoming.mkdir(parents=True, exist_ok=True)
        self.stats: dict[int, pb.Stat] = {}
        self.stats_total = SyncStats()
        self._dirs: list[pb.Stat] = []
        self._open: dict[int, tuple[BinaryIO, str]] = {}
        self._decomp: zstandard.ZstdDecompressor | None = None
        # The previous copy is scanned while the client is still listing its side.
        self._scan: Future[dict[str, os.stat_result]] = Future()
        threading.Thread(target=self._scan_dest, name="filesync-scan", daemon=True).start()

    def _scan_dest(self) -> None:
        try:
            self._scan.set_result(_scan(str(self.dest)))
        except BaseException as err:
            self._scan.set_exception(err)

    def _abs(self, rel: str) -> str:
        return self._dest_prefix + rel

    def plan(self, listing: list[pb.Stat]) -> tuple[list[int], list[int]]:
        """Apply deletions, directories and symlinks; return (ids to hash, ids to fetch)."""
        self.stats = {s.id: s for s in listing}
        by_path = {s.path: s for s in listing}
        for path in by_path:
            if not path or path[0] == "/" or ("." in path and _escapes(path)):
                raise BuildError(f"the client listed an invalid context path {path!r}")
        existing = self._scan.result()
        self._prune_missing(by_path, existing)
        to_hash: list[int] = []
        to_fetch: list[int] = []
        kept = 0
        for s in listing:
            mode = s.mode
            cur = existing.get(s.path)
            if stat.S_ISREG(mode):  # the common case first, without building a path
                if cur is None or cur.st_size != s.size:
                    to_fetch.append(s.id)
                elif cur.st_mtime_ns == s.mtime_ns and cur.st_mode == mode:
                    kept += 1
                else:
                    to_hash.append(s.id)
                continue
            target = self._abs(s.path)
            if stat.S_ISDIR(mode):
                if cur is None:
                    os.mkdir(target, 0o700)
                self._dirs.append(s)
            elif stat.S_ISLNK(mode):
                if cur is None or os.readlink(target) != s.linkname:
                    if cur is not None:
                        os.unlink(target)
                    os.symlink(s.linkname, target)
                os.utime(target, ns=(s.mtime_ns, s.mtime_ns), follow_symlinks=False)
                kept += cur is not None
            elif stat.S_ISFIFO(mode):
                if cur is None:
                    os.mkfifo(target)
                self._finish_meta(target, s)
        self.stats_total.kept += kept
        return to_hash, to_fetch

    def _prune_missing(self, by_path: dict[str, pb.Stat],
                       existing: dict[str, os.stat_result]) -> None:
        """Remove what the listing lacks or has with another type (from ``existing`` too)."""
        gone: set[str] = set()
        for rel in sorted(existing):  # a parent sorts before its children
            parent = rel.rpartition("/")[0]
            if parent in gone:
                gone.add(rel)
                del existing[rel]
                continue
            want = by_path.get(rel)
            if want is None or not _same_type(want.mode, existing[rel].st_mode):
                _remove(self._abs(rel))
                gone.add(rel)
                del existing[rel]
                self.stats_total.removed += 1

    def check_hashes(self, hashes: list[pb.FileHash]) -> list[int]:
        """Files whose content really differs (the rest only get new metadata)."""
        fetch: list[int] = []
        for h in hashes:
            s = self.stats[h.id]
            target = self._abs(s.path)
            self.stats_total.hashed += 1
            if _sha256_file(target) == h.sha256:
                self._finish_meta(target, s)
                self.stats_total.kept += 1
            else:
                fetch.append(h.id)
        return fetch

    def write(self, file_id: int, frame: bytes) -> None:
        import zstandard  # reason: loaded by the first file that arrives

        if self._decomp is None:
            self._decomp = zstandard.ZstdDecompressor()
        entry = self._open.get(file_id)
        if entry is None:
            tmp = os.path.join(self.incoming, str(file_id))
            entry = (open(tmp, "wb"), tmp)  # closed in end() or abort()
            self._open[file_id] = entry
        data = self._decomp.decompress(frame)
        entry[0].write(data)
        self.stats_total.raw_bytes += len(data)
        self.stats_total.wire_bytes += len(frame)

    def end(self, file_id: int) -> None:
        s = self.stats[file_id]
        entry = self._open.pop(file_id, None)
        if entry is None:  # an empty file has no data frames
            tmp = os.path.join(self.incoming, str(file_id))
            open(tmp, "wb").close()
        else:
            f, tmp = entry
            f.close()
        self._finish_meta(tmp, s)
        os.replace(tmp, self._abs(s.path))
        self.stats_total.files += 1
        self.stats_total.sent_paths.append(s.path)

    def abort(self) -> None:
        for f, tmp in self._open.values():
            f.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._open.clear()

    @staticmethod
    def _finish_meta(target: str, s: pb.Stat) -> None:
        os.chmod(target, stat.S_IMODE(s.mode))
        os.utime(target, ns=(s.mtime_ns, s.mtime_ns))

    def finish(self) -> SyncStats:
        """Directory modes and times last (writing into a directory changes its mtime)."""
        for s in reversed(self._dirs):
            self._finish_meta(self._abs(s.path), s)
        os.chmod(self.dest, 0o755)
        return self.stats_total
