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
from dataclasses import dataclass, field

from buildkit_py import rootpath
from buildkit_py.errors import BuildError
from buildkit_py.worker.chmod import ModeFunc

PathFilter = Callable[[str], bool]
"""Takes a path relative to the copy source (``a/b.txt``); True keeps it."""

WildcardMatch = Callable[[str, str], bool]
"""Go filepath.Match(pattern, name) for one path component."""

_WILDCARD_CHARS = frozenset("*?[")


@dataclass
class Owner:
    uid: int
    gid: int


@dataclass
class CopyOptions:
    owner: Owner | None = None
    mode: ModeFunc | None = None
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
    _links: dict[tuple[int, int], str] = field(default_factory=dict)


def has_wildcard(path: str) -> bool:
    return any(c in _WILDCARD_CHARS for c in path)


def _glob(root: str, pattern: str, match: WildcardMatch) -> list[str]:
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


def _copy_xattrs(src: str, dst: str) -> None:
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError:
        return
    for name in names:
        if name.startswith("system."):
            continue
        try:
            os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False),
                        follow_symlinks=False)
        except OSError as err:
            if err.errno not in (errno.ENOTSUP, errno.EPERM):
                raise


def _apply_meta(src_st: os.stat_result, dst: str, opts: CopyOptions, is_dir: bool) -> None:
    is_link = stat.S_ISLNK(src_st.st_mode)
    uid, gid = (opts.owner.uid, opts.owner.gid) if opts.owner else (src_st.st_uid, src_st.st_gid)
    os.lchown(dst, uid, gid)
    if not is_link:
        perm = stat.S_IMODE(src_st.st_mode)
        if opts.mode is not None:
            perm = opts.mode(perm, is_dir)
        os.chmod(dst, perm)
    if opts.timestamp is not None:
        ns = opts.timestamp * 1_000_000_000
        os.utime(dst, ns=(ns, ns), follow_symlinks=False)
    else:
        os.utime(dst, ns=(src_st.st_atime_ns, src_st.st_mtime_ns), follow_symlinks=False)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _copy_entry(src: str, src_st: os.stat_result, dst: str, opts: CopyOptions) -> None:
    """Copy one non-directory entry to ``dst`` (whose parent exists)."""
    try:
        dst_st: os.stat_result | None = os.lstat(dst)
    except FileNotFoundError:
        dst_st = None
    if dst_st is not None:
        if stat.S_ISDIR(dst_st.st_mode) and not opts.always_replace_existing_dest_paths:
            raise BuildError(f"cannot replace directory {dst!r} with a file",
                             hint="remove the directory first or copy to another path")
        _remove(dst)
    mode = src_st.st_mode
    key = (src_st.st_dev, src_st.st_ino)
    if src_st.st_nlink > 1 and not stat.S_ISDIR(mode):
        first = opts._links.get(key)
        if first is not None:
            os.link(first, dst)
            return
        opts._links[key] = dst
    if stat.S_ISREG(mode):
        shutil.copyfile(src, dst, follow_symlinks=False)
    elif stat.S_ISLNK(mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISFIFO(mode):
        os.mkfifo(dst)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        os.mknod(dst, mode, src_st.st_rdev)
    elif stat.S_ISSOCK(mode):
        return  # sockets are not copied, as tar cannot carry them either
    _copy_xattrs(src, dst)
    _apply_meta(src_st, dst, opts, is_dir=False)


def _ensure_dir(dst: str, src_st: os.stat_result | None, opts: CopyOptions) -> None:
    try:
        st = os.lstat(dst)
    except FileNotFoundError:
        os.mkdir(dst)
        if src_st is not None:
            _apply_meta(src_st, dst, opts, is_dir=True)
        return
    if not stat.S_ISDIR(st.st_mode):
        if not opts.always_replace_existing_dest_paths:
            raise BuildError(f"cannot copy a directory onto non-directory {dst!r}")
        _remove(dst)
        os.mkdir(dst)
    if src_st is not None:
        _apply_meta(src_st, dst, opts, is_dir=True)


def _copy_tree(src_dir: str, dst_dir: str, opts: CopyOptions, rel: str) -> None:
    with os.scandir(src_dir) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        sub_rel = f"{rel}/{entry.name}" if rel else entry.name
        if opts.keep is not None and not opts.keep(sub_rel):
            if entry.is_dir(follow_symlinks=False):
                # an excluded dir may still hold re-included children
                _copy_filtered_dir(entry.path, os.path.join(dst_dir, entry.name), opts, sub_rel)
            continue
        st = entry.stat(follow_symlinks=False)
        dst = os.path.join(dst_dir, entry.name)
        if stat.S_ISDIR(st.st_mode):
            _ensure_dir(dst, st, opts)
            _copy_xattrs(entry.path, dst)
            _copy_tree(entry.path, dst, opts, sub_rel)
            _apply_meta(st, dst, opts, is_dir=True)
        else:
            _copy_entry(entry.path, st, dst, opts)


def _copy_filtered_dir(src: str, dst: str, opts: CopyOptions, rel: str) -> None:
    """Copy only the kept descendants of an excluded directory (creating parents lazily)."""
    with os.scandir(src) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        sub_rel = f"{rel}/{entry.name}"
        assert opts.keep is not None
        kept = opts.keep(sub_rel)
        if entry.is_dir(follow_symlinks=False):
            if kept:
                st = entry.stat(follow_symlinks=False)
                os.makedirs(dst, exist_ok=True)
                target = os.path.join(dst, entry.name)
                _ensure_dir(target, st, opts)
                _copy_tree(entry.path, target, opts, sub_rel)
                _apply_meta(st, target, opts, is_dir=True)
            else:
                _copy_filtered_dir(entry.path, os.path.join(dst, entry.name), opts, sub_rel)
        elif kept:
            os.makedirs(dst, exist_ok=True)
            _copy_entry(entry.path, entry.stat(follow_symlinks=False),
                        os.path.join(dst, entry.name), opts)


def _mkdir_parents(root: str, container_dir: str, owner: Owner | None,
                   timestamp: int | None) -> str:
    """mkdir -p inside root (mode 0755); returns the host path."""
    host = rootpath.resolve(root, container_dir)
    missing: list[str] = []
    probe = host
    while not os.path.lexists(probe):
        missing.append(probe)
        probe = os.path.dirname(probe)
    if os.path.lexists(probe) and not os.path.isdir(probe):
        raise BuildError(f"cannot create directory {container_dir!r}: "
                         f"{rootpath.relative(root, probe)} is not a directory")
    for path in reversed(missing):
        os.mkdir(path, 0o755)
        os.chmod(path, 0o755)
        if owner is not None:
            os.lchown(path, owner.uid, owner.gid)
        if timestamp is not None:
            ns = timestamp * 1_000_000_000
            os.utime(path, ns=(ns, ns))
    return host


def copy(src_root: str, src: str, dest_root: str, dest: str, opts: CopyOptions) -> None:
    """Copy ``src`` (in ``src_root``) to ``dest`` (in ``dest_root``), BuildKit-style."""
    dest_is_dir = dest.endswith("/") or dest in ("", ".")
    dest = rootpath.clean(dest)
    wildcard = opts.allow_wildcard and has_wildcard(src)
    if wildcard:
        if opts.wildcard_match is None:
            raise BuildError("internal: wildcard copy needs a matcher")
        matches = _glob(src_root, src, opts.wildcard_match)
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
            raise BuildError(f"failed to compute cache key: {match!r} not found",
                             hint="check the path is inside the build context "
                                  "and not excluded by .dockerignore") from None
        parent_rel = ""
        if opts.parents:
            parent_rel = os.path.dirname(match.lstrip("/"))
        target_dir_path = dest if not parent_rel else rootpath.clean(dest + "/" + parent_rel)
        if stat.S_ISDIR(src_st.st_mode) and opts.dir_copy_contents:
            if opts.parents:
                target = rootpath.clean(dest + "/" + match.lstrip("/"))
            else:
                target = dest
            # The destination directory is created like BuildKit does (0755, owned by
            # --chown or root); it never takes the source directory's mode or owner.
            if opts.create_dest_path:
                host_dst = _mkdir_parents(dest_root, target, opts.owner, opts.timestamp)
            else:
                host_dst = rootpath.resolve(dest_root, target)
                if not os.path.lexists(host_dst):
                    _mkdir_parents(dest_root, target, opts.owner, opts.timestamp)
            if not os.path.isdir(host_dst):
                if not opts.always_replace_existing_dest_paths:
                    raise BuildError(f"cannot copy a directory onto non-directory {target!r}")
                _remove(host_dst)
                _mkdir_parents(dest_root, target, opts.owner, opts.timestamp)
            _copy_tree(host_src, host_dst, opts, "")
            continue
        # a single entry (file, symlink, or a dir copied as itself)
        host_dest = rootpath.resolve(dest_root, target_dir_path)
        into_dir = dest_is_dir or opts.parents or os.path.isdir(host_dest)
        if into_dir:
            if opts.create_dest_path:
                host_dest = _mkdir_parents(dest_root, target_dir_path, opts.owner, opts.timestamp)
            final = os.path.join(host_dest, os.path.basename(match))
        else:
            parent = os.path.dirname(target_dir_path)
            if opts.create_dest_path:
                _mkdir_parents(dest_root, parent, opts.owner, opts.timestamp)
            final = rootpath.resolve(dest_root, target_dir_path, follow_final=False)
        if not os.path.isdir(os.path.dirname(final)):
            raise BuildError(f"copy {match} to {dest}: destination directory "
                             f"{rootpath.relative(dest_root, os.path.dirname(final))} "
                             "does not exist")
        if stat.S_ISDIR(src_st.st_mode):
            _ensure_dir(final, src_st, opts)
            _copy_tree(host_src, final, opts, "")
            _apply_meta(src_st, final, opts, is_dir=True)
        else:
            _copy_entry(host_src, src_st, final, opts)


def mkdir(root: str, path: str, mode: int, *, make_parents: bool, owner: Owner | None,
          timestamp: int | None) -> None:
    path = rootpath.clean(path)
    if make_parents:
        _mkdir_parents(root, os.path.dirname(path), owner, timestamp)
    host = rootpath.resolve(root, path)
    if os.path.isdir(host):
        if not make_parents:
            raise BuildError(f"mkdir {path}: file exists")
        return
    if os.path.lexists(host):
        raise BuildError(f"mkdir {path}: a non-directory exists at that path")
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
        targets = _glob(root, path, wildcard_match)
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
