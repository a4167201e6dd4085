"""``type=local`` outputs: the result's files copied into a folder (one sub-folder per
platform when several), keeping modes, owners (when permitted), mtimes and links."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import ClassVar

from buildkit_py.api.outputs import OutputSpec
from buildkit_py.exporter.base import Built, ExportEnv


class LocalExporter:
    makes_image: ClassVar[bool] = False

    def __init__(self, spec: OutputSpec) -> None:
        self.spec = spec

    def export(self, built: Built, env: ExportEnv) -> None:
        dest = Path(self.spec.dest or ".")
        with env.step(f"copying files to {dest}"):
            for r in built.results:
                sub = dest / r.platform.for_path() if built.multi else dest
                with env.mount(r.snapshot_key) as root:
                    export_local(root, sub)


def _copy_meta(src: str, dst: str) -> None:
    st = os.lstat(src)
    os.lchown(dst, st.st_uid, st.st_gid)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def export_local(root: Path, dest: Path) -> None:
    """Copy the tree at ``root`` into ``dest`` (merged with what is there), keeping
    modes, owners (when permitted), mtimes, symlinks and hardlinks."""
    dest.mkdir(parents=True, exist_ok=True)
    links: dict[tuple[int, int], str] = {}
    can_chown = os.geteuid() == 0
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        out_dir = dest if rel == "." else dest / rel
        dirnames.sort()
        for name in sorted(dirnames):
            src = os.path.join(dirpath, name)
            dst = out_dir / name
            if os.path.islink(src):
                if os.path.lexists(dst):
                    os.unlink(dst)
                os.symlink(os.readlink(src), dst)
                if can_chown:
                    _copy_meta(src, str(dst))
                continue
            dst.mkdir(exist_ok=True)
        for name in sorted(filenames):
            src = os.path.join(dirpath, name)
            dst = out_dir / name
            st = os.lstat(src)
            if os.path.lexists(dst):
                os.unlink(dst)
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in links:
                os.link(links[key], dst)
                continue
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(src), dst)
            elif stat.S_ISREG(st.st_mode):
                shutil.copyfile(src, dst)
            elif stat.S_ISFIFO(st.st_mode):
                os.mkfifo(dst)
            elif (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)) and can_chown:
                os.mknod(dst, st.st_mode, st.st_rdev)
            else:
                continue
            links[key] = str(dst)
            if can_chown:
                _copy_meta(src, str(dst))
            elif not stat.S_ISLNK(st.st_mode):
                os.chmod(dst, stat.S_IMODE(st.st_mode))
    # directory metadata last, so writing children does not disturb mtimes
    for dirpath, dirnames, _ in os.walk(root, topdown=False):
        for name in dirnames:
            src = os.path.join(dirpath, name)
            if os.path.islink(src):
                continue
            rel = os.path.relpath(src, root)
            if can_chown:
                _copy_meta(src, str(dest / rel))
            else:
                os.chmod(dest / rel, stat.S_IMODE(os.lstat(src).st_mode))
