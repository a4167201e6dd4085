"""Context transfer over the session: the client's sender and the daemon's receiver.

The protocol (after BuildKit's filesync, reference §8.3, over typed messages):

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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from buildkit_py.control import control_pb2 as pb
from buildkit_py.control.wire import CHUNK

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
        from buildkit_py.frontend.dockerfile.dockerignore import IgnoreMatcher

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
        import zstandard

        comp = zstandard.ZstdCompressor(level=3)
        with open(self._paths[file_id], "rb") as f:
            while block := f.read(CHUNK):
                yield comp.compress(block)


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
        dest.mkdir(parents=True, exist_ok=True)
        incoming.mkdir(parents=True, exist_ok=True)
        self.stats: dict[int, pb.Stat] = {}
        self.stats_total = SyncStats()
        self._dirs: list[pb.Stat] = []
        self._open: dict[int, tuple[BinaryIO, str]] = {}
        self._decomp: zstandard.ZstdDecompressor | None = None

    def _abs(self, rel: str) -> str:
        return os.path.join(self.dest, rel)

    def plan(self, listing: list[pb.Stat]) -> tuple[list[int], list[int]]:
        """Apply deletions, directories and symlinks; return (ids to hash, ids to fetch)."""
        self.stats = {s.id: s for s in listing}
        by_path = {s.path: s for s in listing}
        self._prune_missing(by_path)
        to_hash: list[int] = []
        to_fetch: list[int] = []
        for s in listing:
            target = self._abs(s.path)
            try:
                cur: os.stat_result | None = os.lstat(target)
            except FileNotFoundError:
                cur = None
            if stat.S_ISDIR(s.mode):
                if cur is None:
                    os.mkdir(target, 0o700)
                self._dirs.append(s)
            elif stat.S_ISLNK(s.mode):
                if cur is None or os.readlink(target) != s.linkname:
                    if cur is not None:
                        os.unlink(target)
                    os.symlink(s.linkname, target)
                os.utime(target, ns=(s.mtime_ns, s.mtime_ns), follow_symlinks=False)
                self.stats_total.kept += cur is not None
            elif stat.S_ISFIFO(s.mode):
                if cur is None:
                    os.mkfifo(target)
                self._finish_meta(target, s)
            elif stat.S_ISREG(s.mode):
                if cur is None or cur.st_size != s.size:
                    to_fetch.append(s.id)
                elif cur.st_mtime_ns == s.mtime_ns and cur.st_mode == s.mode:
                    self.stats_total.kept += 1
                else:
                    to_hash.append(s.id)
        return to_hash, to_fetch

    def _prune_missing(self, by_path: dict[str, pb.Stat]) -> None:
        for dirpath, dirnames, filenames in os.walk(self.dest):
            rel_dir = os.path.relpath(dirpath, self.dest)
            prefix = "" if rel_dir == "." else rel_dir + "/"
            for name in list(dirnames):
                rel = prefix + name
                want = by_path.get(rel)
                full = os.path.join(dirpath, name)
                is_link = os.path.islink(full)
                if want is None or not stat.S_ISDIR(want.mode) or is_link:
                    dirnames.remove(name)
                    _remove(full)
                    self.stats_total.removed += 1
            for name in filenames:
                rel = prefix + name
                want = by_path.get(rel)
                full = os.path.join(dirpath, name)
                if want is None or not _same_type(want.mode, os.lstat(full).st_mode):
                    os.unlink(full)
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
        import zstandard

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
