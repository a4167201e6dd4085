"""The byte counts BuildKit shows for sending a client directory to its daemon.

buildkitd reports the transfer of a local source (``transferring context: 70B``) as the
sum of the protobuf sizes of the fsutil packets it receives: a STAT packet per entry the
client sends, each requested regular file as DATA packets (32 KiB chunks, then an empty
one) and a closing FIN. bkpy moves files differently (an embedded build reads them in
place, bkpyd syncs them with its own protocol), so it computes what fsutil would have
sent for the same directory and filters, to show BuildKit's figure.

Which files BuildKit asks data for depends on what it received before under the same
shared key: the Dockerfile and ``.dockerignore`` loads ask for everything every time,
the build context only for files whose metadata (size, mtime, mode, owner, link target)
changed since. :class:`TransferLedger` remembers the last listing per directory and key.

The figure costs a walk of the directory in Python (about 20 us an entry: 0.4 s for the
20,000-file context of ``bench/``, where the whole no-op rebuild takes 0.3 s), so a
directory of more than ``MAX_ENTRIES`` entries gets no figure: a status line is not worth
slowing every build of a large context down.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from buildkit_py.frontend.dockerfile.dockerignore import IgnoreMatcher

# Go's os.ModeType: dir, symlink, named pipe, socket, device, char device, irregular
MODE_TYPE = (1 << 31) | (1 << 27) | (1 << 25) | (1 << 24) | (1 << 26) | (1 << 21) | (1 << 19)
CHUNK = 32 << 10  # fsutil's copy buffer: the largest DATA payload
FIN = 2  # a FIN packet: just its type
_WILDCARDS = frozenset("*?[\\")
MAX_ENTRIES = 5000


class TooManyEntries(Exception):
    """The directory holds more entries than the caller would walk."""


def varint_len(value: int) -> int:
    if value < 0:
        return 10  # negative int64s take the full ten bytes
    n = 1
    while value >= 0x80:
        value >>= 7
        n += 1
    return n


def _delimited(payload: int) -> int:
    """A length-delimited field with a one-byte tag (all fsutil's field numbers < 16)."""
    return 1 + varint_len(payload) + payload


def _number(value: int) -> int:
    return 1 + varint_len(value) if value else 0  # proto3 leaves zeros out


def go_mode(mode: int) -> int:
    """A unix ``st_mode`` as Go's ``os.FileMode`` bits, which fsutil sends (sockets
    cleared, as fsutil does)."""
    bits = stat.S_IMODE(mode) & 0o777
    kind = stat.S_IFMT(mode)
    bits |= {stat.S_IFDIR: 1 << 31, stat.S_IFLNK: 1 << 27, stat.S_IFBLK: 1 << 26,
             stat.S_IFCHR: (1 << 26) | (1 << 21), stat.S_IFIFO: 1 << 25}.get(kind, 0)
    if mode & stat.S_ISUID:
        bits |= 1 << 23
    if mode & stat.S_ISGID:
        bits |= 1 << 22
    if mode & stat.S_ISVTX:
        bits |= 1 << 20
    return bits


@dataclass(frozen=True)
class Entry:
    """One entry as fsutil's Stat message carries it."""

    path: str
    mode: int  # Go FileMode bits
    uid: int
    gid: int
    size: int
    mtime_ns: int
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: tuple[tuple[str, bytes], ...] = ()

    @property
    def wants_data(self) -> bool:
        """A regular file that is not a second name of an earlier hard link."""
        return self.mode & MODE_TYPE == 0 and not self.linkname

    def key(self) -> list[object]:
        """What fsutil's metadata differ compares."""
        return [self.mode, self.uid, self.gid, self.size, self.mtime_ns, self.linkname,
                self.devmajor, self.devminor]

    def stat_packet(self) -> int:
        body = (_delimited(len(self.path.encode(errors="surrogateescape")))
                + _number(self.mode) + _number(self.uid) + _number(self.gid)
                + _number(self.size) + _number(self.mtime_ns)
                + (_delimited(len(self.linkname.encode(errors="surrogateescape")))
                   if self.linkname else 0)
                + _number(self.devmajor) + _number(self.devminor))
        for name, value in self.xattrs:
            item = _delimited(len(name.encode())) + _delimited(len(value))
            body += _delimited(item)
        return _delimited(body)  # the packet: type STAT (0, left out) and the stat


def data_packets(file_id: int, size: int) -> int:
    """The DATA packets of one file: its chunks, then the empty one that ends it."""
    head = 2 + _number(file_id)  # type DATA, the file's index in the listing
    full, rest = divmod(size, CHUNK)
    total = full * (head + _delimited(CHUNK)) + head
    if rest:
        total += head + _delimited(rest)
    return total


def _entry(path: Path, rel: str, st: os.stat_result, links: dict[tuple[int, int], str]
           ) -> Entry:
    mode = go_mode(st.st_mode)
    linkname, size = "", st.st_size
    devmajor = devminor = 0
    if stat.S_ISLNK(st.st_mode):
        linkname = os.readlink(path)
    elif stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode):
        devmajor, devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
        first = links.setdefault((st.st_dev, st.st_ino), rel)
        if first != rel:  # fsutil sends later names of a file as links to the first
            linkname, size = first, 0
    if stat.S_ISDIR(st.st_mode):
        size = 0
    xattrs: list[tuple[str, bytes]] = []
    with contextlib.suppress(OSError):
        for name in sorted(os.listxattr(path, follow_symlinks=False)):
            if not name.startswith("com.apple."):
                with contextlib.suppress(OSError):
                    xattrs.append((name, os.getxattr(path, name, follow_symlinks=False)))
    return Entry(rel, mode, st.st_uid, st.st_gid, size, st.st_mtime_ns, linkname,
                 devmajor, devminor, tuple(xattrs))


def _may_include_below(patterns: Sequence[str], rel_dir: str) -> bool:
    for p in patterns:
        p = p.strip("/")
        if _WILDCARDS.intersection(p) or p.startswith(rel_dir + "/"):
            return True  # wildcards: look inside (a parent is only sent with a child)
    return False


def listing(root: Path, include: Sequence[str] = (), exclude: Sequence[str] = (),
            limit: int | None = None) -> list[Entry]:
    """The entries fsutil sends of ``root``: names sorted, parents first; with include
    patterns (follow paths count as such) only matches, their contents and the parent
    directories of what is sent. Raises :class:`TooManyEntries` once more than ``limit``
    entries were looked at."""
    inc = IgnoreMatcher(include) if include else None
    exc = IgnoreMatcher(exclude) if exclude else None
    out: list[Entry] = []
    pending: list[Entry] = []  # directories sent only if something below them is
    links: dict[tuple[int, int], str] = {}
    seen = [0]

    def visit(directory: Path, prefix: str) -> None:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return
        seen[0] += len(names)
        if limit is not None and seen[0] > limit:
            raise TooManyEntries(root)
        for name in names:
            path = directory / name
            rel = prefix + name
            try:
                st = os.lstat(path)
            except OSError:
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            excluded = exc is not None and exc.matches(rel)
            included = inc is None or inc.matches(rel)
            if included and not excluded:
                out.extend(pending)
                pending.clear()
                out.append(_entry(path, rel, st, links))
                if is_dir:
                    visit(path, rel + "/")
            elif is_dir and ((excluded and exc is not None and exc.may_match_children(rel))
                             or (not included and _may_include_below(include, rel))):
                held = _entry(path, rel, st, links)
                pending.append(held)
                visit(path, rel + "/")
                if pending and pending[-1] is held:
                    pending.pop()

    visit(root, "")
    return out


def transfer_size(entries: Sequence[Entry], previous: dict[str, list[object]] | None = None
                  ) -> int:
    """What BuildKit counts for sending ``entries``: every stat, the data of the regular
    files the receiver asks for (all of them, or with ``previous`` the ones whose metadata
    differs from it), the FIN."""
    total = FIN
    for index, e in enumerate(entries):
        total += e.stat_packet()
        if e.wants_data and (previous is None or previous.get(e.path) != e.key()):
            total += data_packets(index, e.size)
    return total


def dockerfile_size(dockerfile: Path | None, data: bytes) -> int:
    """What BuildKit counts for ``[internal] load build definition``: the Dockerfile's
    directory, filtered to the Dockerfile and its ``.dockerignore`` (and a lowercase
    ``dockerfile``), sent whole. Without a file (stdin) buildx writes one itself."""
    if dockerfile is None or not dockerfile.is_file():
        return transfer_size([Entry("Dockerfile", 0o600, os.getuid(), os.getgid(),
                                    len(data), time.time_ns())])
    name = dockerfile.name
    names = [name, name + ".dockerignore"] + (["dockerfile"] if name == "Dockerfile" else [])
    return transfer_size(listing(dockerfile.parent, names))


class TransferLedger:
    """What was last sent of a directory under a shared key, for the next transfer's
    metadata diff (BuildKit keeps the previous copy itself)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _file(self, directory: Path, key: str) -> Path:
        name = hashlib.sha256(f"{directory.absolute()}\0{key}".encode()).hexdigest()
        return self.root / name[:32]

    def exchange(self, directory: Path, key: str, entries: Sequence[Entry]
                 ) -> dict[str, list[object]] | None:
        """The previous listing (None: nothing sent before); ``entries`` replace it."""
        path = self._file(directory, key)
        try:
            text: str | None = path.read_text()
        except OSError:
            text = None
        try:
            previous: dict[str, list[object]] | None = (
                json.loads(text) if text is not None else None)
        except ValueError:
            previous = None
        current = json.dumps({e.path: e.key() for e in entries})
        if current == text:  # an unchanged directory: the ledger already says so
            return previous
        with contextlib.suppress(OSError):  # a lost ledger only means a larger figure
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(current)
            tmp.replace(path)
        return previous
