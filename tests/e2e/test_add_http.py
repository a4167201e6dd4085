"""``ADD https://...`` through ``bkpy build``, against a real HTTPS server on loopback whose
CA the builder config trusts. Expected files (names, modes, owners, mtimes) are what the
newest BuildKit produced for the same Dockerfile (``buildctl ... --output type=tar``)."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Bkpy, Run, make_runner
from tests.source.http_server import LAST_MODIFIED, LAST_MODIFIED_EPOCH, FileServer, Resource

BODY = b"hello from http\n"


def _tgz() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        info = tarfile.TarInfo("inner.txt")
        info.size = 3
        t.addfile(info, io.BytesIO(b"abc"))
    return buf.getvalue()


TGZ = _tgz()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FileServer]:
    srv = FileServer(tmp_path / "tls", tls=True)
    srv.resources.update({
        "/etag/a.txt": Resource(BODY, etag='"v1"', last_modified=LAST_MODIFIED),
        "/cd/path.bin": Resource(BODY, content_disposition='attachment; filename="fromcd.txt"'),
        "/plain/": Resource(BODY),
        "/redir/r.txt": Resource(location="/etag/target.txt"),
        "/etag/target.txt": Resource(BODY, etag='"v1"', last_modified=LAST_MODIFIED),
        "/arch/x.tar.gz": Resource(TGZ, etag='"t"', last_modified=LAST_MODIFIED),
        "/arch/y.tar.gz": Resource(TGZ, etag='"t"'),
    })
    yield srv
    srv.stop()


@pytest.fixture
def bkpy(tmp_path: Path, server: FileServer) -> Bkpy:
    """``bkpy`` on a private root whose builder config trusts the server's CA (a test
    passes its own ``BKPY_BUILDER_CONFIG`` to go without)."""
    config = tmp_path / "bkpyd.toml"
    config.write_text(f'[http]\nca = ["{server.ca_pem}"]\n')
    run = make_runner(tmp_path / "state")

    def with_config(*args: str, check: bool = True, env: dict[str, str] | None = None) -> Run:
        return run(*args, check=check, env={"BKPY_BUILDER_CONFIG": str(config), **(env or {})})

    return with_config


def _context(tmp_path: Path, dockerfile: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx


def _files(tar_path: Path) -> dict[str, tuple[int, int, int, int, bytes]]:
    """Regular files of an exported tar: name -> (mode, uid, gid, mtime, bytes)."""
    out = {}
    with tarfile.open(tar_path) as t:
        for m in t.getmembers():
            if m.isfile():
                f = t.extractfile(m)
                assert f is not None
                out[m.name] = (m.mode, m.uid, m.gid, int(m.mtime), f.read())
    return out


def _build(bkpy: Bkpy, ctx: Path, out: Path, check: bool = True) -> Run:
    return bkpy("build", "--progress", "plain", "-o", f"type=tar,dest={out}", str(ctx),
                check=check)


def test_add_https_files_as_buildkit_makes_them(bkpy: Bkpy, server: FileServer,
                                                 tmp_path: Path) -> None:
    u = server.url
    ctx = _context(tmp_path, f"""FROM scratch
ADD {u("/etag/a.txt")} /a/
ADD {u("/cd/path.bin")} /b/
ADD {u("/plain/")} /c/
ADD {u("/redir/r.txt")} /d/
ADD {u("/arch/x.tar.gz")} /e/
ADD --chmod=755 --chown=12:34 {u("/etag/a.txt")} /f/
ADD {u("/etag/a.txt")} /g.txt
ADD --unpack=true {u("/arch/y.tar.gz")} /h/
""")
    _build(bkpy, ctx, tmp_path / "out.tar")
    lm = LAST_MODIFIED_EPOCH
    # the referee's tar, file by file: 0600 root:root, mtime Last-Modified else the epoch;
    # named after the URL (not Content-Disposition); archives stay packed unless --unpack
    assert _files(tmp_path / "out.tar") == {
        "a/a.txt": (0o600, 0, 0, lm, BODY),
        "b/path.bin": (0o600, 0, 0, 0, BODY),
        "c/plain": (0o600, 0, 0, 0, BODY),
        "d/r.txt": (0o600, 0, 0, lm, BODY),
        "e/x.tar.gz": (0o600, 0, 0, lm, TGZ),
        "f/a.txt": (0o755, 12, 34, lm, BODY),
        "g.txt": (0o600, 0, 0, lm, BODY),
        "h/inner.txt": (0o644, 0, 0, 0, b"abc"),
    }


def test_rebuild_is_cached_after_one_conditional_request(bkpy: Bkpy, server: FileServer,
                                                         tmp_path: Path) -> None:
    urls = ["/etag/a.txt", "/arch/x.tar.gz", "/redir/r.txt"]
    ctx = _context(tmp_path, "FROM scratch\n" + "".join(
        f"ADD {server.url(p)} /d{i}/\n" for i, p in enumerate(urls)))
    _build(bkpy, ctx, tmp_path / "1.tar")
    first_bodies = server.bodies_sent
    server.reset_counts()
    run = _build(bkpy, ctx, tmp_path / "2.tar")
    assert _files(tmp_path / "1.tar") == _files(tmp_path / "2.tar")
    # one HEAD with If-None-Match per URL (the redirect's target too), no body
    assert sorted((r.method, r.path, r.if_none_match, r.status) for r in server.requests) == [
        ("HEAD", "/arch/x.tar.gz", '"t"', 304), ("HEAD", "/etag/a.txt", '"v1"', 304),
        ("HEAD", "/etag/target.txt", '"v1"', 304), ("HEAD", "/redir/r.txt", '"v1"', 302)]
    assert (first_bodies, server.bodies_sent) == (3, 0)
    assert run.err.count("CACHED") >= 3


def test_checksum_ok_and_mismatch(bkpy: Bkpy, server: FileServer, tmp_path: Path) -> None:
    good = "sha256:" + hashlib.sha256(BODY).hexdigest()
    ctx = _context(tmp_path, f"FROM scratch\nADD --checksum={good} {server.url('/plain/')} /\n")
    _build(bkpy, ctx, tmp_path / "ok.tar")
    assert _files(tmp_path / "ok.tar")["plain"][4] == BODY
    bad = "sha256:" + "0" * 64
    ctx = _context(tmp_path, f"FROM scratch\nADD --checksum={bad} {server.url('/cd/path.bin')} /\n")
    r = _build(bkpy, ctx, tmp_path / "bad.tar", check=False)
    assert r.code != 0
    assert f"digest mismatch for {server.url('/cd/path.bin')}: {good} (expected: {bad})" in r.err
    assert "Traceback" not in r.err


@pytest.mark.parametrize(("path", "config", "message", "hint"), [
    ("/missing.txt", True, "invalid response status 404 for https://127.0.0.1:", "no file"),
    ("/etag/a.txt", False, "tls: failed to verify certificate: x509:", "[http] ca"),
])
def test_errors_name_the_url(bkpy: Bkpy, server: FileServer, tmp_path: Path, path: str,
                             config: bool, message: str, hint: str) -> None:
    ctx = _context(tmp_path, f"FROM scratch\nADD {server.url(path)} /\n")
    env = {} if config else {"BKPY_BUILDER_CONFIG": str(tmp_path / "empty.toml")}
    (tmp_path / "empty.toml").write_text("")
    r = bkpy("build", "--progress", "plain", str(ctx), check=False, env=env)
    assert r.code != 0
    assert message in r.err and server.url(path) in r.err
    assert hint in r.err
    assert "Traceback" not in r.err
