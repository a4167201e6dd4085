"""Root-confined path resolution shared by file ops, the executor and layer apply."""

from __future__ import annotations

import ast
import inspect
import os
from pathlib import Path

import pytest

from buildkit_py import rootpath
from buildkit_py.errors import BuildError
from buildkit_py.rootpath import RootEscapeError, SymlinkLoopError


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """usr/lib with lib -> usr/lib (relative), etc-abs -> /etc, up -> ../../.. ."""
    r = tmp_path / "root"
    (r / "usr/lib").mkdir(parents=True)
    (r / "usr/lib/libc.so").write_text("c")
    os.symlink("usr/lib", r / "lib")
    os.symlink("/etc", r / "etc-abs")
    os.symlink("../../..", r / "usr/up")
    os.symlink("libc.so", r / "usr/lib/libc.link")
    return r


def test_in_root_symlinks_are_followed(root: Path) -> None:
    assert rootpath.resolve(root, "/lib/libc.so") == str(root / "usr/lib/libc.so")
    assert rootpath.resolve(str(root) + "/", "lib") == str(root / "usr/lib")


def test_absolute_link_restarts_at_the_root_and_dotdot_is_clamped(root: Path) -> None:
    assert rootpath.resolve(root, "/etc-abs/passwd") == str(root / "etc/passwd")
    assert rootpath.resolve(root, "/usr/up/etc/passwd") == str(root / "etc/passwd")
    assert rootpath.resolve(root, "../../x/../y") == str(root / "y")
    assert rootpath.resolve(root, "/") == str(root)


def test_dotdot_after_a_symlink_goes_to_the_targets_parent(root: Path) -> None:
    # like the kernel: lib/.. is usr, not the root
    assert rootpath.resolve(root, "/lib/../bin") == str(root / "usr/bin")


def test_missing_components_are_appended_lexically(root: Path) -> None:
    assert rootpath.resolve(root, "/lib/new/dir/f") == str(root / "usr/lib/new/dir/f")
    assert rootpath.resolve(root, "/usr/lib/libc.so/x") == str(root / "usr/lib/libc.so/x")


def test_follow_final_false_keeps_a_final_symlink(root: Path) -> None:
    link = rootpath.resolve(root, "/lib/libc.link", follow_final=False)
    assert link == str(root / "usr/lib/libc.link")
    assert rootpath.resolve(root, "/lib/libc.link") == str(root / "usr/lib/libc.so")
    assert rootpath.resolve(root, "/lib", follow_final=False) == str(root / "lib")


def test_symlink_loop_is_a_build_error(root: Path) -> None:
    os.symlink("b", root / "a")
    os.symlink("a", root / "b")
    with pytest.raises(SymlinkLoopError, match="too many levels") as info:
        rootpath.resolve(root, "/a/x")
    assert isinstance(info.value, BuildError)


def test_strict_mode_refuses_links_leaving_the_root(root: Path) -> None:
    with pytest.raises(RootEscapeError, match=r"/etc-abs -> /etc, which points outside"):
        rootpath.resolve(root, "etc-abs/x", strict=True)
    with pytest.raises(RootEscapeError, match=r"/usr/up -> \.\./\.\./\.\., which escapes"):
        rootpath.resolve(root, "usr/up/x", strict=True)
    with pytest.raises(RootEscapeError, match="escapes the root"):
        rootpath.resolve(root, "../x", strict=True)
    # links that stay inside are still followed
    assert rootpath.resolve(root, "lib/libc.so", strict=True) == str(root / "usr/lib/libc.so")


def test_walk_reports_resolved_components_through_any_probe(root: Path) -> None:
    seen: list[str] = []

    def probe(rel: str) -> str | None:
        seen.append(rel)
        return {"a": "b/c", "b/c": "/d"}.get(rel)

    assert rootpath.walk("/a/e", probe) == ["d", "e"]
    assert seen == ["a", "b", "b/c", "d", "d/e"]
    with pytest.raises(RootEscapeError):
        rootpath.walk("a/e", probe, strict=True)


def test_clean_clamps_and_clean_relative_refuses() -> None:
    assert rootpath.clean("a//b/./../c/") == "/a/c"
    assert rootpath.clean("../../x") == "/x"
    assert rootpath.clean_relative("./a//b/../c/") == "a/c"
    assert rootpath.clean_relative(".") == ""
    with pytest.raises(RootEscapeError, match="absolute path"):
        rootpath.clean_relative("/etc/passwd")
    with pytest.raises(RootEscapeError, match="escapes the root"):
        rootpath.clean_relative("a/../../etc")


def test_relative_gives_the_container_path(root: Path) -> None:
    assert rootpath.relative(root, root / "usr/lib") == "/usr/lib"
    assert rootpath.relative(str(root), str(root)) == "/"


def test_rootpath_is_a_leaf_module() -> None:
    tree = ast.parse(inspect.getsource(rootpath))
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert {m for m in imported if m.startswith("buildkit_py")} == {"buildkit_py.errors"}
