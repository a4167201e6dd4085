"""Remote build contexts as LLB: the main context from a Git checkout or an HTTP(S)
download, named contexts of those kinds (``--build-context x=URL``), and how a download
is told to be an archive. Expected names and shapes are the referee's (BuildKit)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile

import pytest

from buildkit_py import llb
from buildkit_py.errors import UserError
from buildkit_py.frontend.dockerfile.convert.remote_context import (
    git_context,
    http_download,
    is_archive,
    is_remote_url,
    names_directory,
    unpacked,
)
from tests.convert.helpers import build, names, vertices

GIT = "git://127.0.0.1:9418/repo#feature:sub"


def _tar(**files: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize(("value", "remote"), [
    ("https://example.com/repo.git#main:sub", True),
    ("git@github.com:org/repo.git", True),
    ("git://127.0.0.1/repo", True),
    ("ssh://git@host/repo.git", True),
    ("https://example.com/ctx.tar.gz", True),
    ("http://example.com/Dockerfile", True),
    ("./dir", False),
    ("dir/sub", False),
    ("docker-image://alpine", False),
])
def test_is_remote_url_as_buildx(value: str, remote: bool) -> None:
    assert is_remote_url(value) is remote


def test_names_directory() -> None:
    assert names_directory("../ctx")
    assert not names_directory("git@host:org/repo.git")  # no "://", still a URL
    assert not names_directory("docker-image://alpine")
    assert not names_directory("https://example.com/x.tar")


def test_is_archive_by_first_bytes() -> None:
    tar = _tar(Dockerfile=b"FROM scratch\n")
    for data in (tar, gzip.compress(tar), bz2.compress(tar), lzma.compress(tar)):
        assert is_archive(data[:1024])
    assert not is_archive(b"FROM scratch\nCOPY . /\n")
    assert not is_archive(b"")
    assert not is_archive(b"\0" * 1024)  # an end-of-archive block only: no entry
    # zstd is not one of BuildKit's context formats: such a download is a Dockerfile
    assert not is_archive(b"\x28\xb5\x2f\xfd" + b"\0" * 100)


def test_git_context_llb() -> None:
    st = git_context(GIT)
    assert st is not None
    (v,) = vertices_of(st)
    assert v.op.source.identifier == "git://127.0.0.1:9418/repo#feature:sub"
    assert dict(v.op.source.attrs) == {"git.fullurl": "git://127.0.0.1:9418/repo"}
    assert v.name == f"[internal] load git source {GIT}"
    kept = git_context("https://h/r.git#v1", keep_git_dir=True)
    assert kept is not None
    assert vertices_of(kept)[0].op.source.attrs["git.keepgitdir"] == "true"
    assert git_context("https://h/ctx.tar.gz") is None


def test_http_context_llb() -> None:
    download = http_download("https://h/ctx.tar.gz")
    (src,) = vertices_of(download)
    assert src.op.source.identifier == "https://h/ctx.tar.gz"
    assert dict(src.op.source.attrs) == {"http.filename": "context"}
    assert src.name == "[internal] load remote build context"
    file_op = next(v for v in vertices_of(unpacked(download)) if v.kind == "file")
    (action,) = file_op.op.file.actions
    assert action.copy.src == "/context" and action.copy.dest == "/"
    assert action.copy.attempt_unpack_docker_compatibility
    assert file_op.name == "copy /context /"


def vertices_of(st: llb.State) -> list[llb.Vertex]:
    return list(st.marshal("linux/amd64").vertices())


def test_main_context_is_the_remote_state() -> None:
    st = git_context(GIT)
    res = build("FROM scratch\nCOPY . /src/\nRUN --mount=target=/m true\n",
                main_context=st, image_resolver=None)
    sources = [v.op.source.identifier for v in vertices(res, "source")]
    assert sources == ["git://127.0.0.1:9418/repo#feature:sub"]  # no local:// at all
    assert f"[internal] load git source {GIT}" in names(res)


def test_named_git_context_for_from_and_copy_from() -> None:
    res = build("FROM g\nCOPY --from=t / /t/\n",
                build_contexts={"g": GIT, "t": "https://h/ctx.tar.gz"})
    srcs = {v.op.source.identifier: v for v in vertices(res, "source")}
    assert set(srcs) == {"git://127.0.0.1:9418/repo#feature:sub", "https://h/ctx.tar.gz"}
    # a named HTTP context is the download as one file, never unpacked (BuildKit)
    http = srcs["https://h/ctx.tar.gz"]
    assert dict(http.op.source.attrs) == {"http.filename": "context"}
    assert http.name == "[context t] https://h/ctx.tar.gz"
    assert not [v for v in vertices(res, "file")
                if any(a.copy.attempt_unpack_docker_compatibility for a in v.op.file.actions)]


def test_named_scp_like_git_context() -> None:
    res = build("FROM scratch\nCOPY --from=g / /g/\n",
                build_contexts={"g": "git@github.com:org/repo.git#v1"})
    (src,) = vertices(res, "source")
    assert src.op.source.identifier == "git://github.com/org/repo.git#v1"
    assert src.op.source.attrs["git.fullurl"] == "git@github.com:org/repo.git"


def test_named_ssh_url_context_is_refused_as_buildkit() -> None:
    with pytest.raises(UserError, match="unsupported context source ssh for g"):
        build("FROM g\n", build_contexts={"g": "ssh://git@host/repo.git"})
