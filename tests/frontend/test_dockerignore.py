""".dockerignore parsing and matching behave like BuildKit (moby/patternmatcher +
fsutil), and filepath_match like Go's filepath.Match."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from buildkit_py.errors import UserError
from buildkit_py.frontend.dockerfile import dockerignore
from buildkit_py.frontend.dockerfile.dockerignore import (
    BadPatternError,
    IgnoreMatcher,
    filepath_match,
    find_ignore_file,
    go_clean,
    parse_ignore_file,
    read_ignore_file,
)

# --- parsing --------------------------------------------------------------------------


def test_parse_ignore_file_normalises_patterns() -> None:
    text = (
        "\ufeffnode_modules\n"
        "/abs/path\n"
        "./dot/slash\n"
        "trailing/\r\n"
        "\n"
        "   \n"
        "# a comment\n"
        "  # not a comment: only a leading # counts\n"
        "  spaced  \n"
        "! /inverted/abs\n"
        "!keep/../keep.txt\n"
        "a//b/./c\n"
        "/\n"
        "!\n"
        "! \n"
        "last"
    )
    assert parse_ignore_file(text) == [
        "node_modules",
        "abs/path",
        "dot/slash",
        "trailing",
        "# not a comment: only a leading # counts",
        "spaced",
        "!inverted/abs",
        "!keep.txt",
        "a/b/c",
        "/",
        "!",
        "!",
        "last",
    ]


def test_read_ignore_file_reads_from_disk(tmp_path: Path) -> None:
    f = tmp_path / ".dockerignore"
    f.write_bytes(b"*.log\n!keep.log\nbad\xffname\n")
    assert read_ignore_file(f) == ["*.log", "!keep.log", "bad\udcffname"]


def test_read_missing_ignore_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read"):
        read_ignore_file(tmp_path / "nope")


@pytest.mark.parametrize(("raw", "clean"), [
    ("", "."), (".", "."), ("./", "."), ("a/", "a"), ("a//b", "a/b"), ("/a/../b", "/b"),
    ("//a", "/a"), ("///a", "/a"), ("../a", "../a"), ("a/b/../../..", ".."), ("/..", "/"),
])
def test_go_clean(raw: str, clean: str) -> None:
    assert go_clean(raw) == clean


def test_named_dockerfile_ignore_file_takes_precedence(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    dockerfiles = tmp_path / "df"
    dockerfiles.mkdir()
    dockerfile = dockerfiles / "app.Dockerfile"
    dockerfile.write_text("FROM scratch\n")
    assert find_ignore_file(ctx, dockerfile) is None
    (ctx / ".dockerignore").write_text("a\n")
    assert find_ignore_file(ctx, dockerfile) == ctx / ".dockerignore"
    assert find_ignore_file(ctx) == ctx / ".dockerignore"
    named = dockerfiles / "app.Dockerfile.dockerignore"
    named.write_text("b\n")
    assert find_ignore_file(ctx, dockerfile) == named
    # A directory of that name is not an ignore file.
    (ctx / "Dockerfile.dockerignore").mkdir()
    assert find_ignore_file(ctx, ctx / "Dockerfile") == ctx / ".dockerignore"


# --- single-pattern matching (patternmatcher's table, re-expressed) -------------------

# (pattern, path, matched) for a path evaluated on its own (no parent results)
PATTERN_CASES = [
    ("**", "file", True),
    ("**", "dir/file", True),
    ("**/", "dir/file", True),
    ("**/**", "dir/file", True),
    ("dir/**", "dir/file", True),
    ("dir/**", "dir/dir2/file", True),
    ("dir/**", "dir", False),
    ("**/dir", "dir", True),
    ("**/dir", "dir/file", True),  # via its parent directory
    ("**/dir2/*", "dir/dir2/file", True),
    ("**/dir2/**", "dir/dir2/dir3/file", True),
    ("**file", "file", True),
    ("**file", "dir/dir/file", True),
    ("**file", "dir/myfile", True),  # suffix match, not a component match
    ("**/file", "dir/dir/file", True),
    ("**/file", "dir/myfile", False),
    ("**/file*", "dir/dir/file.txt", True),
    ("**/file*.txt", "dir/dir/file.txt", True),
    ("**/**/*.txt", "dir/dir/file.txt", True),
    ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True),
    ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False),
    ("a/*.txt**", "a/file.txt", True),
    ("*.md", "README.md", True),
    ("*.md", "docs/README.md", False),  # only at the root
    ("*", "anything", True),
    ("*/b", "a/b", True),
    ("*/b", "a/x/b", False),
    ("a[b-d]e", "ace", True),
    ("a[b-d]e", "aae", False),
    ("a[^b-d]e", "aze", True),
    ("a?c", "abc", True),
    ("a?c", "a/c", False),
    (".*", ".foo", True),
    (".*", "foo", False),
    ("abc.def", "abcZdef", False),
    ("a(b)c/def", "a(b)c/def", True),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "axb", False),
    ("a\\\\", "a\\", True),
    ("node_modules", "node_modules/pkg/index.js", True),
    ("node_modules/", "node_modules/x", True),
    ("/node_modules", "node_modules/x", False),  # parse_ignore_file strips the slash
    ("./build", "build/out", True),
    ("build", "rebuild", False),
    ("*.txt", "a.txt\nb", False),
]


@pytest.mark.parametrize(("pattern", "path", "matched"), PATTERN_CASES,
                         ids=[f"{c[0]}|{c[1]}" for c in PATTERN_CASES])
def test_single_pattern_matching(pattern: str, path: str, matched: bool) -> None:
    m = IgnoreMatcher([pattern])
    assert m.match_step(path, None)[0] is matched
    assert m.matches(path) is matched


# (patterns, path, excluded)
MULTI_CASES = [
    (["docs", "!docs/README.md"], "docs/README.md", False),
    (["docs", "!docs/README.md"], "docs/other.md", True),
    (["docs/", "!docs/README.md"], "docs/README.md", False),
    (["docs/*", "!docs/README.md"], "docs/README.md", False),
    (["*.go", "!fileutils.go"], "fileutils.go", False),
    (["!fileutils.go", "*.go"], "fileutils.go", True),  # last matching line wins
    (["**", "!util/docker/web"], "util/docker/web/foo", False),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
    (["**", "!dist/*.whl"], "dist/a.whl", False),
    (["*", "!keep"], "keep/sub/file", False),
    (["dir", "!dir/sub", "dir/sub/x*"], "dir/sub/xa", True),
    (["dir", "!dir/sub", "dir/sub/x*"], "dir/sub/ya", False),
    (["**/*.log", "!important.log"], "sub/important.log", True),
    (["**/*.log", "!**/important.log"], "sub/important.log", False),
    ([], "anything", False),
    (["*"], ".", False),  # the context root itself is never excluded
    # fsutil's parent-results algorithm: an inclusion skipped at the parent (because
    # the parent was already excluded) is not rechecked against the parent later.
    (["a", "!a/b", "a"], "a/b", False),
    (["a", "!a/b", "a"], "a/c", True),
]


@pytest.mark.parametrize(("patterns", "path", "excluded"), MULTI_CASES,
                         ids=[f"{'+'.join(c[0])}|{c[1]}" for c in MULTI_CASES])
def test_multi_pattern_matching(patterns: list[str], path: str, excluded: bool) -> None:
    assert IgnoreMatcher(patterns).matches(path) is excluded


def test_matcher_cleans_patterns_and_flags_exceptions() -> None:
    m = IgnoreMatcher(["docs/", "  !docs/README.md  ", "", "./x/../y"])
    assert m.patterns == ["docs", "!docs/README.md", "y"]
    assert m.has_exceptions
    assert bool(m)
    assert not IgnoreMatcher(["", "  "])
    assert not IgnoreMatcher(["a"]).has_exceptions


@pytest.mark.parametrize("pattern", ["[", "a[", "[^", "[]a]", "[-]", "[x-]", "a\\", "[a-b-c]",
                                     "!", "ok/[z-"])
def test_malformed_patterns_are_rejected_up_front(pattern: str) -> None:
    with pytest.raises(BadPatternError) as info:
        IgnoreMatcher(["fine", pattern])
    assert isinstance(info.value, UserError)
    assert info.value.render().startswith("ERROR: ")


# (excluded dir, patterns, walker must descend)
DESCEND_CASES = [
    ("dir", ["dir"], False),
    ("dir", ["dir", "!dir/keep.txt"], True),
    ("dir", ["dir", "!dir"], False),
    ("dir", ["dir", "!dirx/keep"], False),
    ("dir", ["dir", "!other/keep"], False),
    ("dir/sub", ["dir", "!dir/sub/keep"], True),
    ("dir", ["dir", "!dir/*/keep"], True),
    ("dir", ["dir", "!d*/keep"], True),
    ("dir", ["dir", "!x*/keep"], False),
    ("dir", ["dir", "!*"], False),  # "*" cannot match below dir
    ("dir", ["dir", "!**/keep"], True),
    ("dir", ["dir", "!dir/**"], True),
    ("dir", ["dir", "![d]ir/keep"], True),
    ("a/b/c", ["a", "!a/*/c/d"], True),
    ("a/b/c", ["a", "!a/*/x/d"], False),
]


@pytest.mark.parametrize(("directory", "patterns", "descend"), DESCEND_CASES,
                         ids=[f"{c[0]}|{'+'.join(c[1])}" for c in DESCEND_CASES])
def test_may_match_children(directory: str, patterns: list[str], descend: bool) -> None:
    assert IgnoreMatcher(patterns).may_match_children(directory) is descend


# --- walking a real tree ----------------------------------------------------------------


def make_tree(root: Path, files: list[str]) -> None:
    for rel in files:
        p = root / rel
        if rel.endswith("/"):
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(rel)


TREE = [
    "Dockerfile",
    ".dockerignore",
    "README.md",
    "src/main.py",
    "src/util/helpers.py",
    "src/util/__pycache__/helpers.pyc",
    "node_modules/pkg/index.js",
    "node_modules/pkg/deep/x.js",
    "docs/guide.md",
    "docs/keep/important.md",
    "docs/keep/other.md",
    "logs/a.log",
    "logs/b.txt",
    "empty/",
]


def walk(root: Path, patterns: list[str]) -> list[str]:
    return [rel for rel, _ in IgnoreMatcher(patterns).walk(root)]


def test_walk_without_patterns_yields_everything_sorted_parents_first(tmp_path: Path) -> None:
    make_tree(tmp_path, TREE)
    assert walk(tmp_path, []) == [
        ".dockerignore",
        "Dockerfile",
        "README.md",
        "docs",
        "docs/guide.md",
        "docs/keep",
        "docs/keep/important.md",
        "docs/keep/other.md",
        "empty",
        "logs",
        "logs/a.log",
        "logs/b.txt",
        "node_modules",
        "node_modules/pkg",
        "node_modules/pkg/deep",
        "node_modules/pkg/deep/x.js",
        "node_modules/pkg/index.js",
        "src",
        "src/main.py",
        "src/util",
        "src/util/__pycache__",
        "src/util/__pycache__/helpers.pyc",
        "src/util/helpers.py",
    ]


def test_walk_excludes_and_reincludes(tmp_path: Path) -> None:
    make_tree(tmp_path, TREE)
    got = walk(tmp_path, [
        "node_modules", "**/__pycache__", "*.md", "docs", "!docs/keep/important.md",
        "logs/*.log", "empty",
    ])
    assert got == [
        ".dockerignore",
        "Dockerfile",
        "docs",  # excluded, yielded only because a child is kept
        "docs/keep",
        "docs/keep/important.md",
        "logs",
        "logs/b.txt",
        "src",
        "src/main.py",
        "src/util",
        "src/util/helpers.py",
    ]


def test_walk_drops_an_excluded_dir_whose_exception_matches_nothing(tmp_path: Path) -> None:
    make_tree(tmp_path, TREE)
    assert walk(tmp_path, ["docs", "!docs/keep/missing.md", "!docs/*/none"]) == [
        rel for rel in walk(tmp_path, []) if not rel.startswith("docs")]


def test_walk_prunes_excluded_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    make_tree(tmp_path, TREE)
    listed: list[str] = []
    real_scandir = os.scandir

    def recording_scandir(path: str) -> Any:
        listed.append(os.path.relpath(path, tmp_path))
        return real_scandir(path)

    monkeypatch.setattr(dockerignore.os, "scandir", recording_scandir)
    walk(tmp_path, ["node_modules", "docs", "!docs/keep/important.md"])
    assert "node_modules" not in listed
    assert "node_modules/pkg" not in listed
    assert "docs" in listed and "docs/keep" in listed


def test_walk_matches_matches(tmp_path: Path) -> None:
    make_tree(tmp_path, TREE)
    patterns = ["**/*.py", "!src/main.py", "node_modules/pkg", "!node_modules/pkg/deep",
                "docs/keep/*", "!docs/keep/o*"]
    m = IgnoreMatcher(patterns)
    kept = set(walk(tmp_path, patterns))
    for rel in walk(tmp_path, []):
        if not m.matches(rel):
            assert rel in kept, rel
        elif rel in kept:  # only an excluded dir needed as a parent may be kept
            assert (tmp_path / rel).is_dir() and any(k.startswith(rel + "/") for k in kept)


def test_walk_does_not_follow_symlinks(tmp_path: Path) -> None:
    make_tree(tmp_path, ["real/file"])
    (tmp_path / "link").symlink_to(tmp_path / "real")
    got = dict(IgnoreMatcher([]).walk(tmp_path))
    assert set(got) == {"link", "real", "real/file"}
    assert got["link"].is_symlink()


# --- Go filepath.Match ------------------------------------------------------------------

# (pattern, name, matched or BadPatternError)
GO_MATCH_CASES: list[tuple[str, str, object]] = [
    ("abc", "abc", True),
    ("*", "abc", True),
    ("*c", "abc", True),
    ("a*", "a", True),
    ("a*", "abc", True),
    ("a*", "ab/c", False),
    ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True),
    ("ab[!c]", "ab!", True),  # '!' is not a negation in Go
    ("ab[!c]", "abd", False),
    ("a\\*b", "a*b", True),
    ("a\\*b", "ab", False),
    ("a?b", "a☺b", True),
    ("a[^a]b", "a☺b", True),
    ("a???b", "a☺b", False),
    ("[a-ζ]*", "\u03b1", True),  # Greek alpha
    ("*[a-ζ]", "A", False),
    ("a?b", "a/b", False),
    ("a*b", "a/b", False),
    ("[\\]a]", "]", True),
    ("[\\-]", "-", True),
    ("[x\\-]", "x", True),
    ("[x\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("[\\-x]", "-", True),
    ("arr[[]0].txt", "arr[0].txt", True),
    ("*x", "xxx", True),
    ("", "", True),
    ("", "a", False),
    ("[]a]", "]", BadPatternError),
    ("[-]", "-", BadPatternError),
    ("[x-]", "x", BadPatternError),
    ("[-x]", "x", BadPatternError),
    ("\\", "a", BadPatternError),
    ("[a-b-c]", "a", BadPatternError),
    ("[", "a", BadPatternError),
    ("[^", "a", BadPatternError),
    ("[^bc", "a", BadPatternError),
    ("a[", "a", BadPatternError),
    ("a[", "ab", BadPatternError),
    ("x*[", "y", BadPatternError),  # reported even after an early mismatch
]


@pytest.mark.parametrize(("pattern", "name", "expected"), GO_MATCH_CASES,
                         ids=[f"{c[0]}|{c[1]}" for c in GO_MATCH_CASES])
def test_filepath_match_is_go_compatible(pattern: str, name: str, expected: object) -> None:
    if expected is BadPatternError:
        with pytest.raises(BadPatternError):
            filepath_match(pattern, name)
    else:
        assert filepath_match(pattern, name) is expected
