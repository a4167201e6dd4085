"""The builder's reads of a remote context, against a fake solve: which file is read
from which state, the lower-case ``dockerfile`` fallback, and BuildKit's error wording."""

from __future__ import annotations

import gzip

import pytest

from buildkit_py import llb
from buildkit_py.builder.remote_context import load_remote_context
from buildkit_py.errors import BuildError, UserError


class FakeSolve:
    """Files by the source identifier of the state's head op (or 'unpacked' for a file op)."""

    def __init__(self, files: dict[str, dict[str, bytes]], fail: str = "") -> None:
        self.files = files
        self.fail = fail
        self.reads: list[tuple[str, str, int | None]] = []

    def __call__(self, state: llb.State, path: str, limit: int | None) -> bytes | None:
        head = list(state.marshal("linux/amd64").vertices())[-1]
        where = head.op.source.identifier if head.kind == "source" else "unpacked"
        self.reads.append((where, path, limit))
        if self.fail:
            raise BuildError(self.fail)
        data = self.files.get(where, {}).get(path.lstrip("/"))
        return data[:limit] if data is not None and limit else data


def test_git_dockerfile_and_lowercase_fallback() -> None:
    solve = FakeSolve({"git://h/r.git#main:app": {"dockerfile": b"FROM scratch\n"}})
    ctx = load_remote_context("https://h/r.git#main:app", "Dockerfile", solve)
    assert ctx.dockerfile == b"FROM scratch\n" and ctx.filename == "Dockerfile"
    assert [r[1] for r in solve.reads] == ["Dockerfile", "dockerfile"]


def test_missing_dockerfile_wording() -> None:
    with pytest.raises(BuildError) as err:
        load_remote_context("https://h/r.git", "build/Containerfile", FakeSolve({}))
    assert err.value.text() == ("failed to read dockerfile: open build/Containerfile: "
                                "no such file or directory")


def test_fetch_failures_are_wrapped_with_details_kept() -> None:
    with pytest.raises(UserError) as err:
        load_remote_context("git://h/r", "Dockerfile", FakeSolve({}, fail="no ref x"))
    assert err.value.text() == "failed to read dockerfile: no ref x"
    with pytest.raises(UserError) as err:
        load_remote_context("https://h/c.tgz", "Dockerfile", FakeSolve({}, fail="status 404"))
    assert err.value.text() == "failed to read downloaded context: status 404"


def test_http_archive_is_unpacked_plain_file_is_the_dockerfile() -> None:
    archive = gzip.compress(b"not really a tar, but gzip magic is enough")
    solve = FakeSolve({"https://h/c.tgz": {"context": archive},
                       "unpacked": {"sub/Dockerfile": b"FROM scratch\n"}})
    ctx = load_remote_context("https://h/c.tgz", "sub/Dockerfile", solve)
    assert ctx.filename == "sub/Dockerfile"
    assert solve.reads[0] == ("https://h/c.tgz", "context", 1024)  # the header only
    assert solve.reads[1][0] == "unpacked"
    plain = FakeSolve({"https://h/Dockerfile.txt": {"context": b"FROM scratch\n"}})
    ctx = load_remote_context("https://h/Dockerfile.txt", "ignored/Dockerfile", plain)
    assert (ctx.filename, ctx.dockerfile) == ("context", b"FROM scratch\n")
    # with the Dockerfile from the client, nothing beyond the header is read
    client = FakeSolve({"https://h/Dockerfile.txt": {"context": b"FROM scratch\n"}})
    assert load_remote_context("https://h/Dockerfile.txt", None, client).dockerfile == b""
    assert len(client.reads) == 1
