"""``BUILDX_GIT_LABELS``: the image labels buildx adds from the Git checkout a build's
context is in: ``org.opencontainers.image.revision`` (the commit, ``-dirty`` appended
when ``BUILDX_GIT_CHECK_DIRTY`` is true and the tree has changes),
``org.opencontainers.image.source`` (the remote's URL, credentials masked) and
``com.docker.image.source.entrypoint`` (the Dockerfile's path in the repository). They
override ``--label``s of the same name, as in buildx."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from buildkit_py.errors import UsageError

_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_MASK = "xxxxx"


def _enabled() -> bool:
    value = os.environ.get("BUILDX_GIT_LABELS")
    return value == "full" or value in _TRUE


def _git(cwd: Path, *args: str) -> str | None:
    """The first line of git's output, quotes dropped (as buildx reads it); None when it
    fails."""
    try:
        p = subprocess.run(["git", "-c", "log.showSignature=false", *args], cwd=cwd,
                           capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    if p.returncode != 0:
        return None
    return p.stdout.split("\n", 1)[0].replace("'", "")


def _redact(url: str) -> str:
    """Credentials in a URL masked as BuildKit masks them."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user, colon, _secret = userinfo.partition(":")
    if user and colon:
        userinfo = f"{_MASK}:{_MASK}"
    elif user:
        userinfo = _MASK
    elif colon:
        userinfo = f":{_MASK}"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


def _remote_url(cwd: Path) -> str | None:
    branch = _git(cwd, "symbolic-ref", "-q", "HEAD")
    remote = _git(cwd, "config", "--get", f"branch.{branch.removeprefix('refs/heads/')}.remote") \
        if branch else None
    for name in (remote, "origin", "upstream"):
        if name:
            url = _git(cwd, "remote", "get-url", name)
            if url:
                return _redact(url)
    return None


def git_labels(context: Path | None, dockerfile: Path | None) -> dict[str, str]:
    """The labels for a build of local ``context`` (nothing unless asked for, or when the
    context is not in a Git work tree)."""
    if context is None or not _enabled():
        return {}
    wd = context.absolute()
    if shutil.which("git") is None:
        if (wd / ".git").is_dir():
            raise UsageError("git was not found in the system",
                             hint="install git, or unset BUILDX_GIT_LABELS")
        return {}
    if _git(wd, "rev-parse", "--is-inside-work-tree") != "true":
        return {}
    root = _git(wd, "rev-parse", "--show-toplevel")
    out: dict[str, str] = {}
    sha = _git(wd, "show", "--format=%H", "HEAD", "--quiet", "--")
    if sha:
        if os.environ.get("BUILDX_GIT_CHECK_DIRTY") in _TRUE:
            status = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=wd,
                                    capture_output=True, text=True, timeout=30)
            if status.stdout.strip() or status.returncode != 0:
                sha += "-dirty"
        out["org.opencontainers.image.revision"] = sha
    url = _remote_url(wd)
    if url:
        out["org.opencontainers.image.source"] = url
    if root:
        df = dockerfile.absolute() if dockerfile is not None else wd / "Dockerfile"
        rel = os.path.relpath(os.path.realpath(df), root)  # git's root is a real path
        if not rel.startswith(".."):
            out["com.docker.image.source.entrypoint"] = rel
    return out
