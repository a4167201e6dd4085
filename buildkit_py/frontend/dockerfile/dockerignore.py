""".dockerignore files, the exclude-pattern matcher and Go ``filepath.Match``.

Behaves like BuildKit's stack (moby/patternmatcher + fsutil's walker):

* :func:`parse_ignore_file` reads the file: lines starting with ``#`` are comments,
  lines are trimmed, blank lines skipped, patterns cleaned like Go's
  ``filepath.Clean`` and a leading ``/`` dropped (``/foo``, ``./foo``, ``foo/`` all
  mean ``foo``); ``!`` marks an exception.
* :class:`IgnoreMatcher` matches slash-separated context-relative paths. ``*`` and
  ``?`` never cross ``/``, ``**`` spans any number of directories, ``[...]`` classes
  and ``\\`` escapes work as in Go. A pattern that matches a directory also matches
  everything below it, and the last matching line decides. Matching follows fsutil's
  incremental "parent results" algorithm, so :meth:`IgnoreMatcher.matches` gives the
  answer BuildKit's context transfer gives for that path.
* :meth:`IgnoreMatcher.walk` yields the kept entries of a directory tree, pruning an
  excluded directory unless an exception could re-include something beneath it (then
  it descends, and yields the directory itself only if a descendant is kept).
* :func:`filepath_match` is Go's ``path/filepath.Match`` for COPY/ADD wildcards: ``*``
  and ``?`` stop at ``/``, classes are ``[abc]``, ``[a-z]``, ``[^a-z]`` (``!`` is not a
  negation in Go), ``\\`` escapes; a malformed pattern raises :class:`BadPatternError`.
"""

from __future__ import annotations

import os
import posixpath
import re
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from buildkit_py.errors import UserError

__all__ = [
    "BadPatternError",
    "IgnoreMatcher",
    "filepath_match",
    "find_ignore_file",
    "go_clean",
    "parse_ignore_file",
    "read_ignore_file",
]

IGNORE_FILE_NAME: Final = ".dockerignore"


class BadPatternError(UserError):
    """A malformed file pattern (Go's ``filepath.ErrBadPattern``)."""

    def __init__(self, pattern: str, why: str = "syntax error in pattern") -> None:
        super().__init__(
            f"{why}: {pattern!r}",
            hint="escape literal [ ] * ? \\ characters with a backslash",
        )
        self.pattern = pattern


def go_clean(path: str) -> str:
    """Go's ``path.Clean``: lexical ``.``/``..``/slash clean-up; ``""`` gives ``"."``."""
    cleaned = posixpath.normpath(path) if path else "."
    # normpath keeps a leading "//" (POSIX allows it to be special); Go does not.
    if cleaned.startswith("//"):
        cleaned = cleaned[1:]
    return cleaned


# --- Go filepath.Match ----------------------------------------------------------------


def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    """Split off leading stars and the following star-free chunk."""
    stripped = pattern.lstrip("*")
    star = len(stripped) != len(pattern)
    in_range = False
    i, n = 0, len(stripped)
    while i < n:
        c = stripped[i]
        if c == "\\":
            if i + 1 < n:
                i += 1
        elif c == "[":
            in_range = True
        elif c == "]":
            in_range = False
        elif c == "*" and not in_range:
            break
        i += 1
    return star, stripped[:i], stripped[i:]


def _class_char(chunk: str, i: int, whole: str) -> tuple[str, int]:
    """One (possibly escaped) character of a ``[...]`` class; something must follow."""
    n = len(chunk)
    if i >= n or chunk[i] in "-]":
        raise BadPatternError(whole)
    if chunk[i] == "\\":
        i += 1
        if i >= n:
            raise BadPatternError(whole)
    ch = chunk[i]
    i += 1
    if i >= n:
        raise BadPatternError(whole)
    return ch, i


def _match_chunk(chunk: str, s: str, whole: str) -> str | None:
    """Match ``chunk`` at the start of ``s``; the unmatched rest, or None. After a
    mismatch the rest of the chunk is still checked for syntax, as Go does."""
    failed = False
    i, j = 0, 0
    n = len(chunk)
    while i < n:
        if not failed and j >= len(s):
            failed = True
        c = chunk[i]
        if c == "[":
            r = ""
            if not failed:
                r = s[j]
                j += 1
            i += 1
            negated = i < n and chunk[i] == "^"
            if negated:
                i += 1
            hit = False
            ranges = 0
            while True:
                if i < n and chunk[i] == "]" and ranges > 0:
                    i += 1
                    break
                lo, i = _class_char(chunk, i, whole)
                hi = lo
                if chunk[i] == "-":
                    hi, i = _class_char(chunk, i + 1, whole)
                if not failed and lo <= r <= hi:
                    hit = True
                ranges += 1
            if hit == negated:
                failed = True
        elif c == "?":
            if not failed:
                if s[j] == "/":
                    failed = True
                j += 1
            i += 1
        else:
            if c == "\\":
                i += 1
                if i >= n:
                    raise BadPatternError(whole)
            if not failed:
                if chunk[i] != s[j]:
                    failed = True
                j += 1
            i += 1
    return None if failed else s[j:]


def filepath_match(pattern: str, name: str) -> bool:
    """Go's ``filepath.Match`` on Unix (whole-name match; ``*`` does not cross ``/``)."""
    whole = pattern
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return "/" not in name  # a trailing * matches the rest of this component
        rest = _match_chunk(chunk, name, whole)
        if rest is not None and (not rest or pattern):
            name = rest
            continue
        if star:
            advanced = False
            i = 0
            while i < len(name) and name[i] != "/":
                rest = _match_chunk(chunk, name[i + 1 :], whole)
                if rest is not None:
                    if not pattern and rest:
                        i += 1
                        continue  # the last chunk must consume the whole name
                    name = rest
                    advanced = True
                    break
                i += 1
            if advanced:
                continue
        # Report syntax errors in the rest of the pattern even though it failed.
        while pattern:
            _, chunk, pattern = _scan_chunk(pattern)
            _match_chunk(chunk, "", whole)
        return False
    return not name


# --- .dockerignore file ---------------------------------------------------------------


def parse_ignore_file(text: str) -> list[str]:
    """Patterns of a .dockerignore file, in order, ``!`` exceptions kept as ``!p``."""
    out: list[str] = []
    for index, line in enumerate(text.split("\n")):
        if index == 0 and line.startswith("\ufeff"):
            line = line[1:]
        if line.endswith("\r"):
            line = line[:-1]
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        out.append("!" + pattern if invert else pattern)
    return out


def read_ignore_file(path: str | os.PathLike[str]) -> list[str]:
    """Read and parse an ignore file (undecodable bytes survive as surrogates)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {os.fspath(path)}: {exc.strerror}") from exc
    return parse_ignore_file(data.decode("utf-8", "surrogateescape"))


def find_ignore_file(
    context_dir: str | os.PathLike[str],
    dockerfile_path: str | os.PathLike[str] | None = None,
) -> Path | None:
    """The ignore file that applies: ``<Dockerfile name>.dockerignore`` beside the
    Dockerfile wins over ``.dockerignore`` at the context root; None if neither."""
    if dockerfile_path is not None:
        df = Path(dockerfile_path)
        candidate = df.with_name(df.name + IGNORE_FILE_NAME)
        if candidate.is_file():
            return candidate
    candidate = Path(context_dir) / IGNORE_FILE_NAME
    return candidate if candidate.is_file() else None


# --- matcher --------------------------------------------------------------------------

_EXACT: Final = 0
_PREFIX: Final = 1
_SUFFIX: Final = 2
_REGEXP: Final = 3
_REGEX_ESCAPE: Final = frozenset(".+()|{}$")
_WILD: Final = frozenset("*?[\\")


class _Pattern:
    """One cleaned pattern compiled the way moby/patternmatcher does."""

    __slots__ = ("dirs", "exclusion", "kind", "regex", "text")

    def __init__(self, text: str, exclusion: bool) -> None:
        self.text = text
        self.exclusion = exclusion
        self.dirs = text.split("/")
        self.kind, self.regex = _compile_pattern(text)

    def match(self, path: str) -> bool:
        kind = self.kind
        if kind == _EXACT:
            return path == self.text
        if kind == _PREFIX:
            return path.startswith(self.text[:-2])
        if kind == _SUFFIX:
            suffix = self.text[2:]
            if path.endswith(suffix):
                return True
            return suffix.startswith("/") and path == suffix[1:]  # **/foo matches foo
        assert self.regex is not None
        return self.regex.match(path) is not None


def _compile_pattern(text: str) -> tuple[int, re.Pattern[str] | None]:
    parts = ["^"]
    kind = _EXACT
    pos, n, step = 0, len(text), 0
    while pos < n:
        ch = text[pos]
        pos += 1
        if ch == "*":
            if pos < n and text[pos] == "*":
                pos += 1
                if pos < n and text[pos] == "/":
                    pos += 1  # "**/" behaves as "**"
                if pos >= n:
                    if kind == _EXACT:
                        kind = _PREFIX
                    else:
                        parts.append(".*")
                        kind = _REGEXP
                else:
                    if parts[-1] != "(.*/)?":  # repeats add nothing but backtracking
                        parts.append("(.*/)?")
                    kind = _REGEXP
                if step == 0:
                    kind = _SUFFIX
            else:
                parts.append("[^/]*")
                kind = _REGEXP
        elif ch == "?":
            parts.append("[^/]")
            kind = _REGEXP
        elif ch in _REGEX_ESCAPE:
            parts.append("\\" + ch)
        elif ch == "\\":
            if pos >= n:
                raise BadPatternError(text)
            parts.append("\\" + text[pos])
            pos += 1
            kind = _REGEXP
        elif ch in "[]":
            parts.append(ch)
            kind = _REGEXP
        else:
            parts.append(ch)
        step += 1
    if kind != _REGEXP:
        return kind, None
    parts.append(r"\Z")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "possible nested set" for "[[" classes
            return kind, re.compile("".join(parts))
    except re.error as exc:
        raise BadPatternError(text) from exc


class IgnoreMatcher:
    """Exclude patterns (``.dockerignore`` lines, COPY ``--exclude`` values)."""

    __slots__ = ("_exceptions", "_patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self._patterns: list[_Pattern] = []
        for raw in patterns:
            p = raw.strip()
            if not p:
                continue
            p = go_clean(p)
            exclusion = p.startswith("!")
            if exclusion:
                if len(p) == 1:
                    raise BadPatternError(raw, 'illegal exclusion pattern: "!"')
                p = p[1:]
            filepath_match(p, ".")  # syntax check, raises BadPatternError
            self._patterns.append(_Pattern(p, exclusion))
        self._exceptions = [p for p in self._patterns if p.exclusion]

    @property
    def patterns(self) -> list[str]:
        """The cleaned patterns, exceptions prefixed with ``!``."""
        return [("!" if p.exclusion else "") + p.text for p in self._patterns]

    @property
    def has_exceptions(self) -> bool:
        return bool(self._exceptions)

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def match_step(self, path: str, parent: list[bool] | None) -> tuple[bool, list[bool]]:
        """Whether ``path`` is excluded, given the per-pattern results of its parent
        directory (None at the top). Returns the per-pattern results for children."""
        matched = False
        results = [False] * len(self._patterns)
        for index, pattern in enumerate(self._patterns):
            hit = parent[index] if parent else False
            if not hit:
                # An inclusion can't change an excluded path, nor an exception an
                # included one; such patterns are not evaluated (and not inherited).
                if pattern.exclusion != matched:
                    continue
                hit = pattern.match(path)
                if not hit and not parent and "/" in path:
                    parts = path.split("/")[:-1]
                    hit = any(
                        pattern.match("/".join(parts[: k + 1])) for k in range(len(parts)))
            results[index] = hit
            if hit:
                matched = not pattern.exclusion
        return matched, results

    def matches(self, rel_path: str) -> bool:
        """Whether a context-relative path (``/``-separated) is excluded."""
        path = go_clean(rel_path.lstrip("/"))
        if path == "." or not self._patterns:
            return False
        parts = path.split("/")
        results: list[bool] | None = None
        excluded = False
        for k in range(1, len(parts) + 1):
            excluded, results = self.match_step("/".join(parts[:k]), results)
        return excluded

    def may_match_children(self, rel_dir: str) -> bool:
        """Whether an exception pattern could re-include something below the excluded
        directory ``rel_dir``, so a walker has to descend into it (conservative)."""
        if not self._exceptions:
            return False
        prefix = go_clean(rel_dir.lstrip("/"))
        dir_parts = prefix.split("/")
        for pattern in self._exceptions:
            if not _WILD.intersection(pattern.text):
                if pattern.text.startswith(prefix + "/"):
                    return True
                continue
            if _component_prefix_may_match(pattern.dirs, dir_parts):
                return True
        return False

    def walk(self, root: str | os.PathLike[str]) -> Iterator[tuple[str, os.DirEntry[str]]]:
        """Yield ``(rel_path, entry)`` for every kept entry under ``root``, parents
        before children, names sorted. Symlinks are not followed."""
        top = os.fspath(root)
        frames: list[tuple[Iterator[os.DirEntry[str]], str, list[bool] | None, str | None]]
        frames = [(_listing(top), "", None, None)]
        pending: list[tuple[str, os.DirEntry[str]]] = []
        active = bool(self._patterns)
        while frames:
            entries, prefix, parent, pending_key = frames[-1]
            entry = next(entries, None)
            if entry is None:
                frames.pop()
                if pending_key is not None and pending and pending[-1][0] == pending_key:
                    pending.pop()  # nothing below it was kept
                continue
            rel = prefix + entry.name
            if active:
                excluded, results = self.match_step(rel, parent)
            else:
                excluded, results = False, None
            is_dir = entry.is_dir(follow_symlinks=False)
            if not excluded:
                if pending:
                    yield from pending
                    pending.clear()
                yield rel, entry
                if is_dir:
                    frames.append((_listing(entry.path), rel + "/", results, None))
            elif is_dir and self.may_match_children(rel):
                pending.append((rel, entry))
                frames.append((_listing(entry.path), rel + "/", results, rel))


def _component_prefix_may_match(pattern_dirs: list[str], dir_parts: list[str]) -> bool:
    """Could a pattern (split on ``/``) match some path strictly below ``dir_parts``?"""
    for index, part in enumerate(dir_parts):
        if index >= len(pattern_dirs):
            return False
        component = pattern_dirs[index]
        if "**" in component or "[" in component or "\\" in component:
            # May span directories (a class can even match "/"), or an escaped "/"
            # was split: be conservative.
            return True
        regex = _compile_pattern(component)[1]
        if (part != component) if regex is None else (regex.match(part) is None):
            return False
    return len(pattern_dirs) > len(dir_parts)


def _listing(path: str) -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        raise UserError(f"cannot read directory {path}: {exc.strerror}") from exc
    return iter(entries)
