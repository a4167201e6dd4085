"""The HTTP source under the real solver and worker, against real servers on loopback:
what the file looks like, how rebuilds are answered (one conditional HEAD, no body), how
it keys, and how it fails."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildkit_py import llb
from buildkit_py.errors import BuildError, UserError
from buildkit_py.solver.cache import CacheManager
from buildkit_py.solver.solver import Solver
from buildkit_py.source.http import HttpSources, http_handler_factory
from buildkit_py.source.schemes import HTTP_SCHEMES
from buildkit_py.worker.results import SnapshotResult
from buildkit_py.worker.session import BuildSession
from buildkit_py.worker.worker import BuilderWorker
from tests.source.http_server import LAST_MODIFIED, LAST_MODIFIED_EPOCH, FileServer, Resource

BODY = b"hello from https\n"
BODY_DIGEST = "sha256:" + hashlib.sha256(BODY).hexdigest()


class Rig:
    """A worker and solver cache that outlive one solve, like a builder's state root."""

    def __init__(self, root: Path, ca: list[str], secrets: dict[str, bytes] | None = None
                 ) -> None:
        self.sources = HttpSources(root / "worker" / "http.db", ca)
        self.worker = BuilderWorker(
            root / "worker", session=BuildSession(secrets=secrets or {}),
            sources=dict.fromkeys(HTTP_SCHEMES, http_handler_factory(self.sources)))
        self.cache = CacheManager(root / "solver")

    def build(self, state: llb.State) -> dict[str, tuple[bytes, int, int, int, int]]:
        """Solve ``state`` and return its files: name -> (bytes, mode, uid, gid, mtime)."""
        with Solver(self.worker, self.cache) as solver:
            res = solver.solve(state.marshal())
        try:
            assert res.ref is not None
            inner = res.ref.result
            assert isinstance(inner, SnapshotResult)
            with self.worker.snapshots.read(inner) as root:
                out = {}
                for p in sorted(root.iterdir()):
                    st = p.stat()
                    out[p.name] = (p.read_bytes(), st.st_mode & 0o7777, st.st_uid, st.st_gid,
                                   int(st.st_mtime))
                return out
        finally:
            res.release()

    def close(self) -> None:
        self.worker.close()
        self.sources.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FileServer]:
    srv = FileServer(tmp_path / "tls", tls=True)
    yield srv
    srv.stop()


@pytest.fixture
def rig(tmp_path: Path, server: FileServer) -> Iterator[Rig]:
    r = Rig(tmp_path / "state", [str(server.ca_pem)])
    yield r
    r.close()


def _methods(server: FileServer) -> list[tuple[str, str, str | None, int]]:
    return [(r.method, r.path, r.if_none_match, r.status) for r in server.requests]


def test_download_names_mode_owner_mtime(rig: Rig, server: FileServer) -> None:
    server.resources["/d/tool.txt"] = Resource(BODY, etag='"v1"', last_modified=LAST_MODIFIED)
    files = rig.build(llb.http(server.url("/d/tool.txt")))
    # as the referee: 0600, root, mtime = Last-Modified
    assert files == {"tool.txt": (BODY, 0o600, 0, 0, LAST_MODIFIED_EPOCH)}
    assert _methods(server) == [("GET", "/d/tool.txt", None, 200)]


def test_unchanged_url_is_a_hit_with_one_conditional_head(rig: Rig, server: FileServer,
                                                          tmp_path: Path) -> None:
    server.resources["/f.txt"] = Resource(BODY, etag='W/"v1"', last_modified=LAST_MODIFIED)
    first = rig.build(llb.http(server.url("/f.txt")))
    server.reset_counts()
    rig.close()
    again = Rig(tmp_path / "state", [str(server.ca_pem)])  # a new process on the same root
    try:
        assert again.build(llb.http(server.url("/f.txt"))) == first
    finally:
        again.close()
    assert _methods(server) == [("HEAD", "/f.txt", '"v1"', 304)]
    assert server.bodies_sent == 0


def test_changed_url_is_downloaded_again(rig: Rig, server: FileServer) -> None:
    server.resources["/f.txt"] = Resource(BODY, etag='"v1"')
    rig.build(llb.http(server.url("/f.txt")))
    server.resources["/f.txt"] = Resource(b"v2\n", etag='"v2"')
    server.reset_counts()
    files = rig.build(llb.http(server.url("/f.txt")))
    assert files["f.txt"][0] == b"v2\n"
    assert _methods(server) == [("HEAD", "/f.txt", '"v1"', 200), ("GET", "/f.txt", '"v1"', 200)]
    # both versions are remembered: going back is a conditional hit again
    server.resources["/f.txt"] = Resource(BODY, etag='"v1"')
    server.reset_counts()
    assert rig.build(llb.http(server.url("/f.txt")))["f.txt"][0] == BODY
    assert server.bodies_sent == 0


def test_get_answered_304_when_head_is_not_honoured(rig: Rig, server: FileServer) -> None:
    server.resources["/f.txt"] = Resource(BODY, etag='"v1"', head_status=405)
    first = rig.build(llb.http(server.url("/f.txt")))
    server.reset_counts()
    assert rig.build(llb.http(server.url("/f.txt"))) == first
    # as BuildKit: a failed HEAD falls through to the conditional GET
    assert _methods(server) == [("HEAD", "/f.txt", '"v1"', 405), ("GET", "/f.txt", '"v1"', 304)]
    assert server.bodies_sent == 0


def test_without_etag_every_build_downloads_but_keys_on_content(rig: Rig, server: FileServer
                                                                ) -> None:
    server.resources["/plain"] = Resource(BODY)
    first = rig.build(llb.http(server.url("/plain")))
    assert first == {"plain": (BODY, 0o600, 0, 0, 0)}  # no Last-Modified: the epoch
    server.reset_counts()
    snaps = len(list(rig.worker.sn.walk()))
    assert rig.build(llb.http(server.url("/plain"))) == first
    assert _methods(server) == [("GET", "/plain", None, 200)]  # as BuildKit: no ETag, no check
    assert len(list(rig.worker.sn.walk())) == snaps  # the same bytes are not kept twice


def test_checksum_keys_without_network(rig: Rig, server: FileServer) -> None:
    server.resources["/c.txt"] = Resource(BODY)
    state = llb.http(server.url("/c.txt"), checksum=BODY_DIGEST)
    assert rig.build(state)["c.txt"][0] == BODY
    server.reset_counts()
    assert rig.build(state)["c.txt"][0] == BODY
    assert server.requests == []  # the checksum is the key: nothing asked


def test_checksum_mismatch_names_both_digests(rig: Rig, server: FileServer) -> None:
    server.resources["/c.txt"] = Resource(BODY)
    want = "sha256:" + "0" * 64
    with pytest.raises(BuildError) as err:
        rig.build(llb.http(server.url("/c.txt"), checksum=want))
    text = str(err.value)
    assert f"digest mismatch for {server.url('/c.txt')}: {BODY_DIGEST} (expected: {want})" \
        in text


def test_filename_perm_owner_attrs(rig: Rig, server: FileServer) -> None:
    server.resources["/x"] = Resource(BODY, content_disposition='attachment; filename="cd.bin"')
    assert list(rig.build(llb.http(server.url("/x")))) == ["cd.bin"]
    files = rig.build(llb.http(server.url("/x"), filename="given.txt", chmod=0o755, uid=12,
                               gid=34))
    assert files == {"given.txt": (BODY, 0o755, 12, 34, 0)}


def test_archive_stays_packed(rig: Rig, server: FileServer) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        info = tarfile.TarInfo("inner.txt")
        info.size = 3
        t.addfile(info, io.BytesIO(b"abc"))
    server.resources["/a.tar.gz"] = Resource(buf.getvalue())
    assert rig.build(llb.http(server.url("/a.tar.gz")))["a.tar.gz"][0] == buf.getvalue()


def test_redirect_is_followed(rig: Rig, server: FileServer) -> None:
    server.resources["/old.txt"] = Resource(location="/new/target.txt")
    server.resources["/new/target.txt"] = Resource(BODY, last_modified=LAST_MODIFIED)
    # named after the URL asked for; mtime from the final response
    assert rig.build(llb.http(server.url("/old.txt"))) == {
        "old.txt": (BODY, 0o600, 0, 0, LAST_MODIFIED_EPOCH)}


def test_auth_token_secret_for_the_host(tmp_path: Path, server: FileServer) -> None:
    server.resources["/private"] = Resource(BODY)
    rig = Rig(tmp_path / "s", [str(server.ca_pem)],
              secrets={"HTTP_AUTH_TOKEN_127.0.0.1": b"tok"})
    try:
        rig.build(llb.http(server.url("/private")))
    finally:
        rig.close()
    assert server.requests[0].authorization == "Bearer tok"


@pytest.mark.parametrize(("make_url", "message", "hint"), [
    (lambda s: s.url("/missing.txt"), "invalid response status 404 for https://", "no file"),
    (lambda s: "https://127.0.0.1:1/refused.txt",
     'Get "https://127.0.0.1:1/refused.txt": dial tcp 127.0.0.1:1: connect: connection refused',
     "server up"),
    (lambda s: "https://nonexistent.invalid/x.txt",
     'Get "https://nonexistent.invalid/x.txt": dial tcp: lookup nonexistent.invalid: no such host',
     "DNS"),
])
def test_errors_name_the_url(rig: Rig, server: FileServer, make_url, message: str,  # type: ignore[no-untyped-def]
                             hint: str) -> None:
    with pytest.raises(UserError) as err:
        rig.build(llb.http(make_url(server)))
    assert message in str(err.value)
    assert hint in (err.value.hint or "")


def test_unknown_ca_is_a_tls_error(tmp_path: Path, server: FileServer) -> None:
    server.resources["/f"] = Resource(BODY)
    rig = Rig(tmp_path / "noca", [])
    try:
        with pytest.raises(UserError) as err:
            rig.build(llb.http(server.url("/f")))
    finally:
        rig.close()
    assert f'Get "{server.url("/f")}": tls: failed to verify certificate: x509:' in str(err.value)
    assert "[http] ca" in (err.value.hint or "")


def test_plain_http_server_too(tmp_path: Path) -> None:
    srv = FileServer(tmp_path / "plain")
    srv.resources["/p.txt"] = Resource(BODY, etag='"e"')
    rig = Rig(tmp_path / "s", [])
    try:
        assert rig.build(llb.http(srv.url("/p.txt")))["p.txt"][0] == BODY
    finally:
        rig.close()
        srv.stop()
    assert os.path.basename(srv.url("/p.txt")) == "p.txt"
