"""Remote build contexts (a Git repository, an HTTP(S) URL) as LLB, as BuildKit's
``dockerui`` builds them.

``bkpy build URL`` and ``--build-context NAME=URL`` hand the builder a URL, never files:
the builder fetches it through the same source ops as ``ADD`` (so the download or clone
is cached like any step), on the machine that builds (``bkpyd`` fetches, the client
uploads nothing).

The main context, by kind of URL:

| URL | the context | the Dockerfile |
|---|---|---|
| Git: ``git@``, ``git://``, ``ssh://``, ``http(s)://...git`` | the checkout | ``-f`` in it |
| HTTP(S), an archive (tar, gzip, bzip2, xz) | the archive unpacked at ``/`` | ``-f`` in it |
| HTTP(S), anything else | one file, ``context`` | that file |

A Git URL's ``#REF:SUBDIR`` picks the ref and the checkout's directory (``-f`` is then
relative to it); an archive is told by its first bytes, not its name; ``-f`` is not used
for a download that is no archive: the download is the Dockerfile.

A named context: a Git URL is its checkout; an HTTP(S) URL is its download as one file
named ``context``, never unpacked (BuildKit's rule; the referee shows ``/context`` with
mode 0600 for a ``.tar.gz``). ``ssh://`` is refused for a named context, as BuildKit
does (it reads ``ssh`` as an unknown kind of context).

BuildKit reads no ``.dockerignore`` for a remote main context: every file of the
checkout or archive is in the context (the referee's COPY . keeps files the repository's
``.dockerignore`` lists).
"""

from __future__ import annotations

import io
import tarfile

from buildkit_py import llb
from buildkit_py.errors import UsageError
from buildkit_py.frontend.dockerfile.convert.sources import parse_git_ref

HTTP_CONTEXT_FILE = "context"  # the name a downloaded context gets (BuildKit's)
ARCHIVE_HEADER_BYTES = 1024  # how much of a download tells an archive from a Dockerfile

_MAGICS = (
    b"\x42\x5a\x68",  # bzip2
    b"\x1f\x8b\x08",  # gzip
    b"\xfd\x37\x7a\x58\x5a\x00",  # xz
)


def is_http_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def is_remote_url(value: str) -> bool:
    """Whether a build context names a URL (buildx's test): HTTP(S) or a Git reference."""
    return is_http_url(value) or parse_git_ref(value) is not None


def names_directory(value: str) -> bool:
    """Whether a ``--build-context`` value is a directory of the client's (not an image,
    an OCI layout, a URL: those name themselves with a scheme, or are ``git@`` URLs)."""
    return "://" not in value and not is_remote_url(value)


def git_context(url: str, *, keep_git_dir: bool = False) -> llb.State | None:
    """The checkout a Git URL names (None: not a Git URL)."""
    ref = parse_git_ref(url)
    if ref is None:
        return None
    return llb.git(
        ref.remote, ref.ref, subdir=ref.subdir,
        keep_git_dir=keep_git_dir or bool(ref.keep_git_dir),
        checksum=ref.checksum, skip_submodules=ref.submodules is False,
        description=f"[internal] load git source {url}")


def http_download(url: str, description: str = "[internal] load remote build context"
                  ) -> llb.State:
    """The download of ``url`` as one file, ``/context``."""
    return llb.http(url, filename=HTTP_CONTEXT_FILE, description=description)


def is_archive(header: bytes) -> bool:
    """Whether the first bytes of a download are an archive BuildKit unpacks as a context:
    bzip2, gzip or xz by their magic, else a tar header that parses."""
    if any(header.startswith(magic) for magic in _MAGICS):
        return True
    try:
        with tarfile.open(fileobj=io.BytesIO(header), mode="r:") as tar:
            return tar.next() is not None
    except (tarfile.TarError, EOFError):
        return False


def unpacked(download: llb.State) -> llb.State:
    """An archive download unpacked at ``/`` (what COPY would do with it)."""
    action = llb.copy(download, "/" + HTTP_CONTEXT_FILE, "/", attempt_unpack=True)
    return llb.scratch().file(action, description=f"copy /{HTTP_CONTEXT_FILE} /")


def named_remote_context(name: str, value: str) -> llb.State:
    """``--build-context NAME=URL``: a Git checkout, or an HTTP(S) download as one file."""
    if value.startswith("ssh://"):
        raise UsageError(f"unsupported context source ssh for {name}",
                         hint=f"write the Git URL as git@HOST:PATH for --build-context {name}")
    state = git_context(value)
    if state is not None:
        return state
    if is_http_url(value):
        return http_download(value, f"[context {name}] {value}")
    raise UsageError(f"invalid context specifier {value} for {name}")
