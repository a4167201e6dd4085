"""FileOp actions on real directories: BuildKit copy semantics and root confinement."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import pytest

from buildkit_py.errors import BuildError
from buildkit_py.llb import chmod
from buildkit_py.worker import fileops
from buildkit_py.worker.fileops import CopyOptions, Owner


def _opts(**kw: object) -> CopyOptions:
    kw.setdefault("wildcard_match", lambda pat, name: fnmatch.fnmatchcase(name, pat))
    return CopyOptions(**kw)  # type: ignore[arg-type]


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    c = tmp_path / "ctx"
    (c / "dir" / "sub").mkdir(parents=True)
    (c / "dir" / "a.txt").write_text("a")
    (c / "dir" / "sub" / "b.txt").write_text("b")
    (c / "f.txt").write_text("f")
    (c / "g.txt").write_text("g")
    os.chmod(c / "f.txt", 0o640)
    return c


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    d = tmp_path / "dest"
    d.mkdir()
    return d


def test_directory_contents_are_copied_not_the_directory(ctx: Path, dest: Path) -> None:
    fileops.copy(str(ctx), "dir", str(dest), "/out/", _opts())
    assert (dest / "out" / "a.txt").read_text() == "a"
    assert (dest / "out" / "sub" / "b.txt").read_text() == "b"
    assert not (dest / "out" / "dir").exists()


def test_file_to_path_without_slash_is_written_as_that_path(ctx: Path, dest: Path) -> None:
    fileops.copy(str(ctx), "f.txt", str(dest), "/x/renamed", _opts())
    assert (dest / "x" / "renamed").read_text() == "f"
    assert (os.stat(dest / "x" / "renamed").st_mode & 0o777) == 0o640


def test_file_into_existing_directory(ctx: Path, dest: Path) -> None:
    (dest / "d").mkdir()
    fileops.copy(str(ctx), "f.txt", str(dest), "/d", _opts())
    assert (dest / "d" / "f.txt").read_text() == "f"


def test_wildcard_matching_several_files_goes_into_dest_dir(ctx: Path, dest: Path) -> None:
    fileops.copy(str(ctx), "*.txt", str(dest), "/w", _opts())
    assert sorted(os.listdir(dest / "w")) == ["f.txt", "g.txt"]


def test_wildcard_matching_nothing_is_not_an_error(ctx: Path, dest: Path) -> None:
    fileops.copy(str(ctx), "*.nope", str(dest), "/w/", _opts())
    assert not (dest / "w").exists()


def test_missing_source_is_an_error(ctx: Path, dest: Path) -> None:
    # the copy's own wording; the file op rewords it for a context source (as BuildKit)
    with pytest.raises(fileops.SourceNotFoundError,
                       match=r"^lstat /missing\.txt: no such file or directory$") as info:
        fileops.copy(str(ctx), "missing.txt", str(dest), "/", _opts())
    assert isinstance(info.value, BuildError) and info.value.path == "/missing.txt"


def test_chown_and_symbolic_chmod(ctx: Path, dest: Path) -> None:
    fileops.copy(str(ctx), "dir", str(dest), "/o/",
                 _opts(owner=Owner(1000, 1001), mode=chmod.parse("u=rwX,go=rX")))
    st = os.stat(dest / "o" / "a.txt")
    assert (st.st_uid, st.st_gid) == (1000, 1001)
    assert st.st_mode & 0o777 == 0o644
    assert os.stat(dest / "o" / "sub").st_mode & 0o777 == 0o755
    assert os.stat(dest / "o").st_uid == 1000


def test_hardlinks_are_preserved(ctx: Path, dest: Path) -> None:
    os.link(ctx / "dir" / "a.txt", ctx / "dir" / "a-link")
    fileops.copy(str(ctx), "dir", str(dest), "/h/", _opts())
    assert os.stat(dest / "h" / "a.txt").st_ino == os.stat(dest / "h" / "a-link").st_ino


def test_symlinks_inside_directories_stay_symlinks(ctx: Path, dest: Path) -> None:
    os.symlink("a.txt", ctx / "dir" / "ln")
    fileops.copy(str(ctx), "dir", str(dest), "/s/", _opts())
    assert os.readlink(dest / "s" / "ln") == "a.txt"


def test_symlink_in_destination_cannot_escape_root(ctx: Path, dest: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), dest / "evil")
    fileops.copy(str(ctx), "f.txt", str(dest), "/evil/", _opts())
    assert not (outside / "f.txt").exists()
    assert (dest / str(outside).lstrip("/") / "f.txt").exists()


def test_source_path_cannot_escape_context(ctx: Path, dest: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("s")
    with pytest.raises(BuildError):
        fileops.copy(str(ctx), "../secret.txt", str(dest), "/", _opts())


def test_parents_keeps_source_directories(ctx: Path, dest: Path) -> None:
    fileops.copy(str(ctx), "dir/sub/b.txt", str(dest), "/p/", _opts(parents=True))
    assert (dest / "p" / "dir" / "sub" / "b.txt").read_text() == "b"


def test_timestamp_override(ctx: Path, dest: Path) -> None:
    fileops.copy(str(ctx), "f.txt", str(dest), "/t", _opts(timestamp=1000))
    assert os.stat(dest / "t").st_mtime == 1000


def test_contents_copy_dest_dir_takes_the_source_dir_times_only(ctx: Path,
                                                                  dest: Path) -> None:
    os.utime(ctx / "dir", (1_600_000_000, 1_600_000_000))
    (dest / "existing").mkdir(mode=0o711)
    fileops.copy(str(ctx), "dir", str(dest), "/existing", _opts())
    st = os.stat(dest / "existing")
    assert (st.st_mtime, st.st_mode & 0o7777) == (1_600_000_000, 0o711)


def test_created_dest_dirs_take_an_octal_chmod(ctx: Path, dest: Path) -> None:
    fileops.copy(str(ctx), "f.txt", str(dest), "/a/b/f.txt", _opts(dir_mode=0o750))
    assert os.stat(dest / "a").st_mode & 0o7777 == 0o750
    assert os.stat(dest / "a" / "b").st_mode & 0o7777 == 0o750


def test_symlink_at_a_file_destination_is_written_through(ctx: Path, dest: Path) -> None:
    os.symlink("/target/file", dest / "dangling")
    fileops.copy(str(ctx), "f.txt", str(dest), "/dangling", _opts())
    assert os.path.islink(dest / "dangling")
    assert (dest / "target" / "file").read_text() == "f"


def test_keep_filter_excludes_paths(ctx: Path, dest: Path) -> None:
    fileops.copy(str(ctx), "dir", str(dest), "/k/", _opts(keep=lambda p: not p.startswith("sub")))
    assert (dest / "k" / "a.txt").exists()
    assert not (dest / "k" / "sub").exists()


def test_mkdir_mkfile_rm(dest: Path) -> None:
    fileops.mkdir(str(dest), "/a/b/c", 0o700, make_parents=True, owner=Owner(5, 6), timestamp=None)
    assert os.stat(dest / "a" / "b" / "c").st_mode & 0o777 == 0o700
    assert os.stat(dest / "a" / "b" / "c").st_uid == 5
    fileops.mkfile(str(dest), "/a/f", 0o600, b"data", owner=None, timestamp=None)
    assert (dest / "a" / "f").read_bytes() == b"data"
    fileops.rm(str(dest), "/a/b", allow_not_found=False, allow_wildcard=False)
    assert not (dest / "a" / "b").exists()
    with pytest.raises(BuildError):
        fileops.rm(str(dest), "/nope", allow_not_found=False, allow_wildcard=False)


def test_invalid_chmod_is_a_user_error() -> None:
    with pytest.raises(chmod.ChmodError):
        chmod.parse("u+q")
    with pytest.raises(chmod.ChmodError):
        chmod.parse("17777")
    assert chmod.parse("+x")(0o644, False) == 0o755
    assert chmod.parse("g=u")(0o640, False) == 0o660
