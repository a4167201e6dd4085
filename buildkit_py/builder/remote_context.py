"""A remote main context, fetched before conversion: the Dockerfile comes out of it.

As BuildKit's Dockerfile frontend does, the builder first solves the small LLB that
yields the Dockerfile (the Git checkout; the HTTP download, then its unpacked tree when
it is an archive) and reads the file from that result; conversion then uses the same
states as the main context, so the main solve finds them already done. Which LLB a URL
becomes is the frontend's decision (``frontend/dockerfile/convert/remote_context.py``);
this module only sequences the reads and words their failures as BuildKit does:

| what failed | message |
|---|---|
| fetching the context to read the Dockerfile | ``failed to read dockerfile: <cause>`` |
| downloading an HTTP(S) context | ``failed to read downloaded context: <cause>`` |
| no Dockerfile at the path | ``failed to read dockerfile: open <path>: no such file or ...`` |

Each fetch is shown once in the build's progress (:func:`shown_once`), as in BuildKit.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from buildkit_py import llb, rootpath
from buildkit_py.errors import BuildError, UserError
from buildkit_py.frontend.dockerfile.convert.remote_context import (
    ARCHIVE_HEADER_BYTES,
    HTTP_CONTEXT_FILE,
    git_context,
    http_download,
    is_archive,
    unpacked,
)
from buildkit_py.solver.progress import (
    ProgressEvent,
    ProgressSink,
    VertexCached,
    VertexCompleted,
)

# Solves a state and reads up to ``limit`` bytes (None: all) of one file of its result;
# None when the file does not exist.
ReadFile = Callable[[llb.State, str, int | None], bytes | None]


@dataclass(frozen=True)
class RemoteContext:
    """The main context's LLB and the Dockerfile read from it."""

    context: llb.State
    dockerfile: bytes
    filename: str  # the Dockerfile's name for messages: -f, or "context" for a download


class WrappedError(BuildError):
    """A failure with BuildKit's wrapping (``failed to read dockerfile: ...``), keeping
    the cause's details (the failed step, its log)."""

    def __init__(self, prefix: str, cause: UserError) -> None:
        super().__init__(cause.message, hint=cause.hint)
        self.prefix = prefix
        self.cause = cause

    def details(self) -> list[str]:
        return self.cause.details()

    def text(self) -> str:
        return f"{self.prefix}: {self.cause.text()}"


def load_remote_context(url: str, dockerfile: str | None, read: ReadFile, *,
                        keep_git_dir: bool = False) -> RemoteContext:
    """Fetch the context ``url`` names and read its Dockerfile at ``dockerfile`` (a path
    inside it; None: the Dockerfile comes from the client, read nothing)."""
    git = git_context(url, keep_git_dir=keep_git_dir)
    if git is not None:
        return _with_dockerfile(git, dockerfile, read)
    download = http_download(url)
    try:
        header = read(download, HTTP_CONTEXT_FILE, ARCHIVE_HEADER_BYTES) or b""
    except UserError as err:
        raise WrappedError("failed to read downloaded context", err) from err
    if is_archive(header):
        return _with_dockerfile(unpacked(download), dockerfile, read)
    # Not an archive: the download is the Dockerfile itself (and the whole context).
    return _with_dockerfile(download, HTTP_CONTEXT_FILE if dockerfile is not None else None,
                            read)


def _with_dockerfile(context: llb.State, path: str | None, read: ReadFile) -> RemoteContext:
    if path is None:
        return RemoteContext(context, b"", "Dockerfile")
    return RemoteContext(context, read_dockerfile(context, path, read), path)


def read_in_root(root: Path, path: str, limit: int | None = None) -> bytes | None:
    """Up to ``limit`` bytes (None: all) of the file at ``path`` of a mounted result,
    symlinks resolved inside it; None when there is no such file."""
    try:
        with open(rootpath.resolve(root, path), "rb") as f:
            return f.read(limit) if limit is not None else f.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def read_dockerfile(context: llb.State, path: str, read: ReadFile) -> bytes:
    """The Dockerfile at ``path`` in ``context``; ``dockerfile`` (lower case) also
    answers for ``Dockerfile``, as in BuildKit."""
    candidates = [path]
    if posixpath.basename(path) == "Dockerfile":
        candidates.append(posixpath.join(posixpath.dirname(path), "dockerfile"))
    try:
        for candidate in candidates:
            data = read(context, candidate, None)
            if data is not None:
                return data
    except UserError as err:
        raise WrappedError("failed to read dockerfile", err) from err
    raise BuildError(f"failed to read dockerfile: open {path}: no such file or directory",
                     hint="pass -f with the Dockerfile's path inside the remote context "
                          "(relative to its subdirectory)")


def shown_once(sink: ProgressSink) -> ProgressSink:
    """``sink`` minus the events of vertices it was already told were done: the reads of
    a remote context and the build's own solve each report the fetch, BuildKit's one
    solve session shows it once."""
    done: set[str] = set()

    def forward(event: ProgressEvent) -> None:
        if event.digest in done:
            return
        if isinstance(event, VertexCompleted | VertexCached):
            done.add(event.digest)
        sink(event)

    return forward
