"""File actions of a FileOp (copy, mkdir, mkfile, rm) on host directories.

Every path is resolved inside its root with :mod:`rootpath`, so a symlink in an
image can never redirect a write to the host. Semantics follow BuildKit's copy:
the contents of a source directory are copied (``dir_copy_contents``), a
trailing ``/`` on the destination means "into this directory", metadata (mode,
mtime, xattrs, hardlinks) is preserved unless overridden.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from buildkit_py import rootpath
from buildkit_py.errors import BuildError
from buildkit_py.llb.chmod import ModeFunc

PathFilter = Callable[[str], bool]
"""Takes a path relative to the copy source (``a/b.txt``); True keeps it."""

WildcardMatch = Callable[[str, str], bool]
"""Go filepath.Match(pattern, name) for one path component."""

_WILDCARD_CHARS = frozenset("*?[")


class SourceNotFoundError(BuildError):
    """A copy source is missing (worded as the copy's lstat; a context source is reported
    as BuildKit's checksum error by the file op, which knows the source's kind)."""

    def __init__(self, path: str) -> None:
        super().__init__(f"lstat {path}: no such file or directory")
        self.path = path


@dataclass
class Owner:
    uid: int
    gid: int


@dataclass
class CopyStats:
    """What copies wrote (for the progress log): non-directory entries and file bytes."""

    files: int = 0
    bytes: int = 0


class CopyReuse(Protocol):
    """A tree copy's hook for taking regular files from elsewhere instead of copying them
    (``copy_reuse.LinkPlan`` links them from an earlier layer)."""

    def offer(self, src: str, st: os.stat_result, dst: str, fresh: bool,
              opts: CopyOptions) -> bool:
        """True: the hook places regular file ``src`` (lstat ``st``) at ``dst`` later;
        ``fresh``: the copy created ``dst``'s directory."""
        ...

    def note_dir_times(self, dirs: list[tuple[str, tuple[int, int]]]) -> None:
        """The (atime, mtime) ns the copy gave the directories it created."""
        ...


@dataclass
class CopyOptions:
    owner: Owner | None = None
    mode: ModeFunc | None = None
    # Mode of the directories a copy creates for its destination: an octal --chmod's
    # permission bits (BuildKit's MkdirAll takes them), else 0755.
    dir_mode: int = 0o755
    follow_symlinks: bool = True
    dir_copy_contents: bool = True
    create_dest_path: bool = True
    allow_wildcard: bool = True
    allow_empty_wildcard: bool = True
    timestamp: int | None = None  # seconds; None keeps source mtimes
    keep: PathFilter | None = None  # include/exclude selection within a source dir
    parents: bool = False
    always_replace_existing_dest_paths: bool = False
    wildcard_match: WildcardMatch | None = None
    stats: CopyStats = field(default_factory=CopyStats)
    reuse: CopyReuse | None = None  # may take unchanged files of a tree copy
    _links: dict[tuple[int, int], str] = field(default_factory=dict)


def has_wildcard(path: str) -> bool:
    return any(c in _WILDCARD_CHARS for c in path)


def glob(root: str, pattern: str, match: WildcardMatch) -> list[str]:
    """Container paths under ``root`` matching ``pattern`` component by component."""
    comps = [c for c in rootpath.clean(pattern).split("/") if c]
    found = ["/"]
    for comp in comps:
        nxt: list[str] = []
        for base in found:
            host = rootpath.resolve(root, base)
            if not has_wildcard(comp):
                candidate = rootpath.clean(base + "/" + comp)
                if os.path.lexists(rootpath.resolve(root, candidate, follow_final=False)):
                    nxt.append(candidate)
                continue
            try:
                names = sorted(os.listdir(host))
            except (FileNotFoundError, NotADirectoryError):
                continue
            nxt.extend(rootpath.clean(base + "/" + n) for n in names if match(comp, n))
        found = nxt
    return found


def _copy_xattrs(src: str | int, dst: str | int) -> None:
    """Copy the xattrs (but ``system.*``) of a path or fd onto another path or fd."""
    follow = not isinstance(src, str)  # fds take no follow_symlinks=False
    try:
        names = os.listxattr(src, follow_symlinks=follow)
    except OSError:
        return
    for name in names:
        if name.startswith("system."):
            continue
        try:
            os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=follow),
                        follow_symlinks=isinstance(dst, int))
        except OSError as err:
            if err.errno not in (errno.ENOTSUP, errno.EPERM):
                raise


def _owner_of(src_st: os.stat_result, opts: CopyOptions) -> tuple[int, int]:
    return (opts.owner.uid, opts.owner.gid) if opts.owner else (src_st.st_uid, src_st.st_gid)


def _times(src_st: os.stat_result, opts: CopyOptions) -> tuple[int, int]:
    if opts.timestamp is not None:
        ns = opts.timestamp * 1_000_000_000
        return ns, ns
    return src_st.st_atime_ns, src_st.st_mtime_ns


def _perm(src_st: os.stat_result, opts: CopyOptions, is_dir: bool) -> int:
    perm = stat.S_IMODE(src_st.st_mode)
    return perm if opts.mode is None else opts.mode(perm, is_dir)


def _apply_meta(src: str, src_st: os.stat_result, dst: str, opts: CopyOptions, is_dir: bool,
                *, times: bool = True) -> None:
    """Owner, xattrs, mode and times of ``src`` onto ``dst``.

    chown comes first: on a non-directory it clears setuid bits and security.capability,
    which the xattr copy and chmod then restore.
    """
    os.lchown(dst, *_owner_of(src_st, opts))
    _copy_xattrs(src, dst)
    if not stat.S_ISLNK(src_st.st_mode):
        os.chmod(dst, _perm(src_st, opts, is_dir))
    if times:
        os.utime(dst, ns=_times(src_st, opts), follow_symlinks=False)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _clear_dest(dst: str, opts: CopyOptions) -> None:
    """Make room for a non-directory at ``dst`` (BuildKit replaces files, not dirs)."""
    try:
        dst_st = os.lstat(dst)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(dst_st.st_mode) and not opts.always_replace_existing_dest_paths:
        raise BuildError(f"cannot replace directory {dst!r} with a file",
                         hint="remove the directory first or copy to another path")
    _remove(dst)


def _copy_entry(src: str, src_st: os.stat_result, dst: str, opts: CopyOptions,
                *, track_links: bool = True) -> None:
    """Copy one non-directory entry to ``dst`` (whose parent exists), by path."""
    _clear_dest(dst, opts)
    mode = src_st.st_mode
    if track_links and src_st.st_nlink > 1:
        key = (src_st.st_dev, src_st.st_ino)
        first = opts._links.get(key)
        if first is not None:
            os.link(first, dst, follow_symlinks=False)
            return
        opts._links[key] = dst
    if stat.S_ISREG(mode):
        copy_regular_file(src, src_st, dst, opts, DataCopier())
        return
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISFIFO(mode):
        os.mkfifo(dst)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        os.mknod(dst, mode, src_st.st_rdev)
    elif stat.S_ISSOCK(mode):
        return  # sockets are not copied, as tar cannot carry them either
    _apply_meta(src, src_st, dst, opts, is_dir=False)


_SRC_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_DST_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CFR_FALLBACK = frozenset({errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP,
                           errno.EBADF, errno.EPERM})


class DataCopier:
    """In-kernel data copy: copy_file_range, else sendfile (e.g. across filesystems)."""

    def __init__(self) -> None:
        self.use_cfr = True

    def copy(self, src: int, dst: int, size: int) -> None:
        done = 0
        if self.use_cfr:
            try:
                while done < size:
                    n = os.copy_file_range(src, dst, size - done, done, done)
                    if n == 0:
                        return
                    done += n
                return
            except OSError as err:
                if done or err.errno not in _CFR_FALLBACK:
                    raise
                self.use_cfr = False  # racing threads may both learn it: harmless
        while done < size:
            n = os.sendfile(dst, src, done, size - done)
            if n == 0:
                return
            done += n


def copy_file_fd(src_fd: int, src_st: os.stat_result, name: str, dir_fd: int, dst: str,
                  opts: CopyOptions, data: DataCopier) -> None:
    """Create ``name`` (in ``dir_fd``, or a path when it is -1) as a copy of ``src_fd``.

    ``dst`` is the destination's host path, used when something is already there.
    """
    dfd = None if dir_fd < 0 else dir_fd
    try:
        out = os.open(name, _DST_FLAGS, 0o600, dir_fd=dfd)
    except FileExistsError:
        _clear_dest(dst, opts)
        out = os.open(name, _DST_FLAGS, 0o600, dir_fd=dfd)
    try:
        if src_st.st_size:
            data.copy(src_fd, out, src_st.st_size)
        os.fchown(out, *_owner_of(src_st, opts))  # before xattrs: it drops capabilities
        _copy_xattrs(src_fd, out)
        os.fchmod(out, _perm(src_st, opts, False))
        os.utime(out, ns=_times(src_st, opts))
    finally:
        os.close(out)


def copy_regular_file(src: str, src_st: os.stat_result, dst: str, opts: CopyOptions,
                      data: DataCopier) -> None:
    """Copy regular file ``src`` (lstat ``src_st``) to the path ``dst``."""
    fd = os.open(src, _SRC_FLAGS)
    try:
        copy_file_fd(fd, src_st, dst, -1, dst, opts, data)
    finally:
        os.close(fd)


class CopiedMeta(NamedTuple):
    """What a copied non-directory ends up with besides its content."""

    uid: int
    gid: int
    perm: int
    mtime_ns: int


def copied_meta(src_st: os.stat_result, opts: CopyOptions) -> CopiedMeta:
    """The owner, permission bits and mtime ``opts`` give a copy of a file ``src_st``."""
    uid, gid = _owner_of(src_st, opts)
    return CopiedMeta(uid, gid, _perm(src_st, opts, False), _times(src_st, opts)[1])


_BATCH = 2048  # files per pool task; creates in one directory serialize in the kernel


def copy_workers() -> int:
    # More threads than cores only add lock contention inside the filesystem.
    return max(2, min(4, os.cpu_count() or 1))


class _TreeCopy:
    """One directory tree copy.

    The calling thread walks the source in name order and creates directories;
    batches of files of one directory are copied on a thread pool (each syscall
    releases the GIL), with fd-based calls relative to the two directories.
    Second names of hardlinked files and directory times come after every file:
    creating an entry changes its directory's mtime.
    """

    def __init__(self, opts: CopyOptions) -> None:
        self.opts = opts
        self.data = DataCopier()
        self.dirs: list[tuple[str, os.stat_result]] = []
        self.links: list[tuple[str, str]] = []
        self.pool: ThreadPoolExecutor | None = None
        self.futures: list[Future[None]] = []

    def run(self, src_dir: str, dst_dir: str, src_st: os.stat_result | None = None) -> None:
        """Copy the children of ``src_dir`` into ``dst_dir``; with ``src_st``, ``dst_dir``
        is the copy of ``src_dir`` itself (created here, with its metadata)."""
        try:
            fresh = False
            if src_st is not None:
                fresh = self._make_dir(src_dir, src_st, dst_dir)
            else:
                # The destination of a contents copy keeps its mode and owner but takes
                # the source dir's times (BuildKit restores them), set last like the rest.
                self.dirs.append((dst_dir, os.stat(src_dir)))
            self._walk(src_dir, dst_dir, "", excluded=False, fresh=fresh)
            for fut in self.futures:
                fut.result()
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)
        for first, dst in self.links:
            _clear_dest(dst, self.opts)
            os.link(first, dst, follow_symlinks=False)
        for dst, st in reversed(self.dirs):
            os.utime(dst, ns=_times(st, self.opts), follow_symlinks=False)
        if self.opts.reuse is not None:
            self.opts.reuse.note_dir_times([(d, _times(st, self.opts)) for d, st in self.dirs])

    def _walk(self, src_dir: str, dst_dir: str, rel: str, *, excluded: bool,
              fresh: bool) -> None:
        """Copy the children of ``src_dir``; when ``excluded``, only kept descendants
        (``dst_dir`` is then created only if one exists). ``fresh``: this copy created
        ``dst_dir``, so nothing is in it yet."""
        opts = self.opts
        keep = opts.keep
        reuse = opts.reuse
        with os.scandir(src_dir) as it:
            entries = sorted(it, key=lambda e: e.name)
        files: list[tuple[str, os.stat_result]] = []
        for entry in entries:
            sub_rel = f"{rel}/{entry.name}" if rel else entry.name
            kept = keep is None or keep(sub_rel)
            is_dir = entry.is_dir(follow_symlinks=False)
            dst = os.path.join(dst_dir, entry.name)
            if not kept:
                if is_dir:  # an excluded dir may still hold re-included children
                    self._walk(entry.path, dst, sub_rel, excluded=True, fresh=False)
                continue
            st = entry.stat(follow_symlinks=False)
            if excluded:
                os.makedirs(dst_dir, exist_ok=True)
            if is_dir:
                created = self._make_dir(entry.path, st, dst)
                self._walk(entry.path, dst, sub_rel, excluded=False, fresh=created)
                continue
            opts.stats.files += 1
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                first = opts._links.get(key)
                if first is not None:
                    self.links.append((first, dst))
                    continue
                opts._links[key] = dst
            if stat.S_ISREG(st.st_mode):
                opts.stats.bytes += st.st_size
                if reuse is not None and reuse.offer(entry.path, st, dst, fresh, opts):
                    continue  # placed by reuse.finish() once the layer is unmounted
                files.append((entry.name, st))
                if len(files) >= _BATCH:
                    self._submit(src_dir, dst_dir, files)
                    files = []
            else:
                _copy_entry(entry.path, st, dst, opts, track_links=False)
        if files:
            self._submit(src_dir, dst_dir, files)

    def _make_dir(self, src: str, st: os.stat_result, dst: str) -> bool:
        """Create (or take over) directory ``dst``; True when this call created it."""
        created = True
        try:
            os.mkdir(dst, 0o700)
        except FileExistsError:
            created = False
            if stat.S_ISDIR(os.lstat(dst).st_mode):
                pass  # an existing directory takes the source's metadata
            elif self.opts.always_replace_existing_dest_paths:
                _remove(dst)
                os.mkdir(dst, 0o700)
            else:
                raise BuildError(
                    f"cannot copy a directory onto non-directory {dst!r}") from None
        _apply_meta(src, st, dst, self.opts, is_dir=True, times=False)
        self.dirs.append((dst, st))
        return created

    def _submit(self, src_dir: str, dst_dir: str, files: list[tuple[str, os.stat_result]]
                ) -> None:
        if self.pool is None:
            self.pool = ThreadPoolExecutor(copy_workers(), thread_name_prefix="copy")
        self.futures.append(self.pool.submit(self._copy_files, src_dir, dst_dir, files))

    def _copy_files(self, src_dir: str, dst_dir: str,
                    files: list[tuple[str, os.stat_result]]) -> None:
        sdir = os.open(src_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            try:
                ddir = os.open(dst_dir,
                               os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError as err:  # e.g. a symlink in the image where a directory goes
                if err.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                raise BuildError(f"cannot copy into {dst_dir!r}: not a directory") from None
            try:
                for name, st in files:
                    fd = os.open(name, _SRC_FLAGS, dir_fd=sdir)
                    try:
                        copy_file_fd(fd, st, name, ddir, os.path.join(dst_dir, name),
                                      self.opts, self.data)
                    finally:
                        os.close(fd)
            finally:
                os.close(ddir)
        finally:
            os.close(sdir)




def mkdir_parents(root: str, container_dir: str, owner: Owner | None,
                   timestamp: int | None, mode: int = 0o755) -> str:
    """mkdir -p inside root (created dirs get ``mode``); returns the host path."""
    host = rootpath.resolve(root, container_dir)
    missing: list[str] = []
    probe = host
    while not os.path.lexists(probe):
        missing.append(probe)
        probe = os.path.dirname(probe)
    if os.path.lexists(probe) and not os.path.isdir(probe):
        # Go's MkdirAll wording, as BuildKit reports it
        raise BuildError(f"mkdir {rootpath.relative(root, probe)}: not a directory")
    for path in reversed(missing):
        os.mkdir(path, mode)
        os.chmod(path, mode)
        if owner is not None:
            os.lchown(path, owner.uid, owner.gid)
        if timestamp is not None:
            ns = timestamp * 1_000_000_000
            os.utime(path, ns=(ns, ns))
    return host


def copy(src_root: str, src: str, dest_root: str, dest: str, opts: CopyOptions) -> None:
    """Copy ``src`` (in ``src_root``) to ``dest`` (in ``dest_root``), BuildKit-style."""

    def _mkdirs(container_dir: str) -> str:
        return mkdir_parents(dest_root, container_dir, opts.owner, opts.timestamp,
                              opts.dir_mode)

    dest_is_dir = dest.endswith("/") or dest in ("", ".")
    dest = rootpath.clean(dest)
    wildcard = opts.allow_wildcard and has_wildcard(src)
    if wildcard:
        if opts.wildcard_match is None:
            raise BuildError("internal: wildcard copy needs a matcher")
        matches = glob(src_root, src, opts.wildcard_match)
        if not matches:
            if opts.allow_empty_wildcard:
                return
            raise BuildError(f"no source files were specified matching {src!r}")
        if len(matches) > 1:
            dest_is_dir = True
    else:
        matches = [rootpath.clean(src)]

    for match in matches:
        host_src = rootpath.resolve(src_root, match, follow_final=opts.follow_symlinks)
        try:
            src_st = os.lstat(host_src)
        except FileNotFoundError:
            raise SourceNotFoundError(match) from None
        parent_rel = ""
        if opts.parents:
            parent_rel = os.path.dirname(match.lstrip("/"))
        target_dir_path = dest if not parent_rel else rootpath.clean(dest + "/" + parent_rel)
        if stat.S_ISDIR(src_st.st_mode) and opts.dir_copy_contents:
            if opts.parents:
                target = rootpath.clean(dest + "/" + match.lstrip("/"))
            else:
                target = dest
            # The destination directory is created like BuildKit does (0755 or an octal
            # --chmod, owned by --chown or root); it never takes the source directory's
            # mode or owner.
            if opts.create_dest_path:
                host_dst = _mkdirs(target)
            else:
                host_dst = rootpath.resolve(dest_root, target)
                if not os.path.lexists(host_dst):
                    _mkdirs(target)
            if not os.path.isdir(host_dst):
                if not opts.always_replace_existing_dest_paths:
                    raise BuildError(f"cannot copy a directory onto non-directory {target!r}")
                _remove(host_dst)
                _mkdirs(target)
            _TreeCopy(opts).run(host_src, host_dst)
            continue
        # a single entry (file, symlink, or a dir copied as itself)
        host_dest = rootpath.resolve(dest_root, target_dir_path)
        into_dir = dest_is_dir or opts.parents or os.path.isdir(host_dest)
        if into_dir:
            if opts.create_dest_path:
                host_dest = _mkdirs(target_dir_path)
            final = os.path.join(host_dest, os.path.basename(match))
        else:
            # A symlink at the destination is followed (BuildKit resolves the whole path
            # in the root), even a dangling one: the copy is written at its target.
            final = host_dest
            if opts.create_dest_path:
                _mkdirs(rootpath.relative(dest_root, os.path.dirname(final)))
        if not os.path.isdir(os.path.dirname(final)):
            raise BuildError(f"copy {match} to {dest}: destination directory "
                             f"{rootpath.relative(dest_root, os.path.dirname(final))} "
                             "does not exist")
        if stat.S_ISDIR(src_st.st_mode):
            _TreeCopy(opts).run(host_src, final, src_st)
        else:
            opts.stats.files += 1
            opts.stats.bytes += src_st.st_size if stat.S_ISREG(src_st.st_mode) else 0
            _copy_entry(host_src, src_st, final, opts)


def _below_non_directory(root: str, path: str) -> str | None:
    """The first prefix of ``path`` that lies below a non-directory (BuildKit's error when
    resolving it in the root: ``lstat PREFIX: not a directory``), or None."""
    current = ""
    for part in path.strip("/").split("/"):
        current += "/" + part
        try:
            os.lstat(rootpath.resolve(root, current, follow_final=False))
        except NotADirectoryError:
            return current
        except FileNotFoundError:
            return None
    return None


def mkdir(root: str, path: str, mode: int, *, make_parents: bool, owner: Owner | None,
          timestamp: int | None) -> None:
    path = rootpath.clean(path)
    below = _below_non_directory(root, path)
    if below is not None:
        raise BuildError(f"lstat {below}: not a directory")
    if make_parents:
        mkdir_parents(root, os.path.dirname(path), owner, timestamp)
    host = rootpath.resolve(root, path)
    if os.path.isdir(host):
        if not make_parents:
            raise BuildError(f"mkdir {path}: file exists")
        return
    if os.path.lexists(host):
        raise BuildError(f"mkdir {path}: " + ("not a directory" if make_parents
                                              else "file exists"))
    try:
        os.mkdir(host)
    except FileNotFoundError:
        raise BuildError(f"mkdir {path}: parent directory does not exist") from None
    os.chmod(host, mode)
    if owner is not None:
        os.lchown(host, owner.uid, owner.gid)
    if timestamp is not None:
        ns = timestamp * 1_000_000_000
        os.utime(host, ns=(ns, ns))


def mkfile(root: str, path: str, mode: int, data: bytes, *, owner: Owner | None,
           timestamp: int | None) -> None:
    path = rootpath.clean(path)
    host = rootpath.resolve(root, path)
    if os.path.isdir(host):
        raise BuildError(f"mkfile {path}: a directory exists at that path")
    try:
        with open(host, "wb") as f:
            f.write(data)
    except FileNotFoundError:
        raise BuildError(f"mkfile {path}: parent directory does not exist") from None
    os.chmod(host, mode)
    if owner is not None:
        os.lchown(host, owner.uid, owner.gid)
    if timestamp is not None:
        ns = timestamp * 1_000_000_000
        os.utime(host, ns=(ns, ns))


def rm(root: str, path: str, *, allow_not_found: bool, allow_wildcard: bool,
       wildcard_match: WildcardMatch | None = None) -> None:
    if allow_wildcard and has_wildcard(path) and wildcard_match is not None:
        targets = glob(root, path, wildcard_match)
    else:
        targets = [rootpath.clean(path)]
    if not targets and not allow_not_found:
        raise BuildError(f"rm {path}: no such file or directory")
    for target in targets:
        if target == "/":
            raise BuildError("rm /: refusing to remove the root")
        host = rootpath.resolve(root, target, follow_final=False)
        if not os.path.lexists(host):
            if allow_not_found:
                continue
            raise BuildError(f"rm {target}: no such file or directory")
        _remove(host)
