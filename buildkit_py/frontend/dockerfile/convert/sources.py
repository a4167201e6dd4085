"""Classify COPY/ADD sources: git repositories, HTTP(S) URLs, local paths."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

_SCP_LIKE = re.compile(r"^[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:")


@dataclass(frozen=True)
class GitRef:
    remote: str
    ref: str = ""
    subdir: str = ""
    keep_git_dir: bool | None = None
    checksum: str = ""
    submodules: bool | None = None


def _bool(value: str) -> bool:
    return value.lower() in ("1", "true", "t", "yes")


def parse_git_ref(src: str) -> GitRef | None:
    """A git source (``git@host:repo``, ``ssh://``, ``git://``, ``https://.../x.git``)
    with its ``#ref:subdir`` fragment or ``?ref=&subdir=...`` query, else None."""
    is_url = src.startswith(("http://", "https://"))
    if not (src.startswith(("ssh://", "git://")) or _SCP_LIKE.match(src) or is_url):
        return None
    base, _, fragment = src.partition("#")
    query: dict[str, str] = {}
    if "://" in base:
        parts = urlsplit(base)
        if is_url and not parts.path.endswith(".git"):
            return None
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        base = parts._replace(query="").geturl()
    ref, _, subdir = fragment.partition(":")
    ref = query.get("ref") or query.get("tag") or query.get("branch") or ref
    subdir = query.get("subdir") or subdir
    keep = query.get("keep-git-dir")
    submodules = query.get("submodules")
    return GitRef(
        remote=base,
        ref=ref,
        subdir=subdir,
        keep_git_dir=_bool(keep) if keep is not None else None,
        checksum=query.get("checksum", ""),
        submodules=_bool(submodules) if submodules is not None else None,
    )


def is_http_source(src: str) -> bool:
    return src.startswith(("http://", "https://")) and parse_git_ref(src) is None


def url_filename(url: str) -> str:
    """Name of a downloaded file: the last URL path segment, else ``__unnamed__``."""
    try:
        path = unquote(urlsplit(url).path, errors="strict")  # as Go's URL.Path: decoded
    except ValueError:
        return "__unnamed__"
    base = posixpath.basename(path.rstrip("/")) if path not in ("", "/") else ""
    return base if base not in ("", ".", "/") else "__unnamed__"
