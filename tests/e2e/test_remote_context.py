"""Remote build contexts end to end, through ``bkpy build`` and through ``bkpyd``: a Git
context served by ``git daemon`` (branch, subdirectory, ``-f``), a tarball and a plain
Dockerfile served over HTTP, named contexts of both kinds, and ``# syntax=``.

Expected files, modes and error texts are what the referee (BuildKit) gave for the same
repository and URLs; notably BuildKit applies no ``.dockerignore`` to a remote context,
reads ``-f`` relative to the Git subdirectory, and keeps a named HTTP context packed as
one file ``context`` (mode 0600).
"""

from __future__ import annotations

import gzip
import io
import json
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.control.conftest import Daemon, client_env, import_busybox, run_bkpy
from tests.e2e.conftest import Bkpy
from tests.images import write_busybox_layout
from tests.source.gitservers import GitDaemon, git
from tests.source.http_server import LAST_MODIFIED, FileServer, Resource

TAR_MTIME = 1_600_000_000


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _done(rawjson: str) -> list[str]:
    """The names of the vertices a ``--progress rawjson`` stream reports done."""
    return [v["name"] for line in rawjson.splitlines() if line.startswith("{")
            for v in json.loads(line).get("vertexes", []) if v.get("completed")]


def _names(rawjson: str) -> set[str]:
    """The names of every vertex a ``--progress rawjson`` stream reports."""
    return {v["name"] for line in rawjson.splitlines() if line.startswith("{")
            for v in json.loads(line).get("vertexes", [])}


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``ctx.git`` served by git daemon: main (a Dockerfile at the root and in sub/, a
    .dockerignore in each) and feature (adds sub/feat.txt); yields its git:// URL."""
    base = tmp_path_factory.mktemp("gitctx")
    work = base / "work"
    git("init", "-q", str(work))
    _write(work, {
        "Dockerfile": "FROM scratch\nCOPY . /out/\n",
        ".dockerignore": "top.txt\n",
        "top.txt": "top\n",
        "sub/Dockerfile": "FROM scratch\nCOPY . /sub/\n",
        "sub/docker/Alt.Dockerfile": "FROM scratch\nCOPY . /alt/\n",
        "sub/a.txt": "hello\n",
        "sub/ignored.txt": "secret\n",
        "sub/.dockerignore": "ignored.txt\n",
    })
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "one", cwd=work)
    git("checkout", "-q", "-b", "feature", cwd=work)
    _write(work, {"sub/feat.txt": "feat\n"})
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "two", cwd=work)
    git("checkout", "-q", "main", cwd=work)
    git("clone", "-q", "--bare", str(work), str(base / "ctx.git"))
    server = GitDaemon(base)
    yield f"{server.url}/ctx.git"
    server.stop()


def _tarball(compress: bool) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM scratch\nCOPY . /t/\n"),
                           (".dockerignore", b"x.txt\n"), ("x.txt", b"x\n"),
                           ("d/y.txt", b"y\n"), ("d/Other", b"FROM scratch\nCOPY d /dd/\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), TAR_MTIME, 0o644
            tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if compress else raw


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    server = FileServer(tmp_path_factory.mktemp("httpctx"))
    server.resources["/ctx.tar.gz"] = Resource(_tarball(True), last_modified=LAST_MODIFIED)
    server.resources["/ctx.tar"] = Resource(_tarball(False))
    server.resources["/plain"] = Resource(b"FROM scratch\nCOPY . /p/\n",
                                          last_modified=LAST_MODIFIED)
    yield server
    server.stop()


def test_git_context_default_branch_no_dockerignore(bkpy: Bkpy, repo: str,
                                                    tmp_path: Path) -> None:
    r = bkpy("build", "--progress", "rawjson", "-o", f"type=local,dest={tmp_path / 'o'}",
             repo)
    assert f"[internal] load git source {repo}" in _names(r.err)
    assert "[internal] load build definition" not in r.err
    # BuildKit reads no .dockerignore for a remote context: top.txt and ignored.txt stay
    assert _files(tmp_path / "o") == [
        "out", "out/.dockerignore", "out/Dockerfile", "out/sub", "out/sub/.dockerignore",
        "out/sub/Dockerfile", "out/sub/a.txt", "out/sub/docker",
        "out/sub/docker/Alt.Dockerfile", "out/sub/ignored.txt", "out/top.txt"]
    r = bkpy("build", "--call", "targets", repo, check=False)
    assert r.code == 2 and "cannot read one inside a remote context yet" in r.err


def test_git_context_branch_subdir_and_file(bkpy: Bkpy, repo: str, tmp_path: Path) -> None:
    url = f"{repo}#feature:sub"
    bkpy("build", "-o", f"type=local,dest={tmp_path / 'a'}", url)
    assert _files(tmp_path / "a") == [
        "sub", "sub/.dockerignore", "sub/Dockerfile", "sub/a.txt", "sub/docker",
        "sub/docker/Alt.Dockerfile", "sub/feat.txt", "sub/ignored.txt"]
    # -f is relative to the subdirectory, as buildx sends it
    bkpy("build", "-f", "docker/Alt.Dockerfile", "-o", f"type=local,dest={tmp_path / 'b'}",
         url)
    assert [f for f in _files(tmp_path / "b") if "/" not in f] == ["alt"]
    assert (tmp_path / "b" / "alt" / "feat.txt").read_text() == "feat\n"
    # an absolute -f is a Dockerfile of this machine's, the context still the repository
    local = tmp_path / "Local.Dockerfile"
    local.write_text("FROM scratch\nCOPY a.txt /local/\n")
    bkpy("build", "-f", str(local), "-o", f"type=local,dest={tmp_path / 'c'}", url)
    assert _files(tmp_path / "c") == ["local", "local/a.txt"]


def test_tarball_contexts(bkpy: Bkpy, http: FileServer, tmp_path: Path) -> None:
    r = bkpy("build", "--progress", "rawjson", "-o", f"type=local,dest={tmp_path / 'gz'}",
             http.url("/ctx.tar.gz"))
    # each fetch shown done once, though the build solves it three times
    assert _done(r.err).count("[internal] load remote build context") == 1
    assert _done(r.err).count("copy /context /") == 1
    out = tmp_path / "gz" / "t"
    assert _files(out) == [".dockerignore", "Dockerfile", "d", "d/Other", "d/y.txt", "x.txt"]
    assert (out / "x.txt").stat().st_mtime == TAR_MTIME  # the archive's times are kept
    bkpy("build", "-f", "d/Other", "-o", f"type=local,dest={tmp_path / 'tar'}",
         http.url("/ctx.tar"))
    assert _files(tmp_path / "tar") == ["dd", "dd/Other", "dd/y.txt"]


def test_plain_url_is_the_dockerfile_and_the_context(bkpy: Bkpy, http: FileServer,
                                                      tmp_path: Path) -> None:
    bkpy("build", "-o", f"type=local,dest={tmp_path / 'o'}", http.url("/plain"))
    assert _files(tmp_path / "o") == ["p", "p/context"]
    assert stat.S_IMODE((tmp_path / "o" / "p" / "context").stat().st_mode) == 0o600


def test_named_git_and_http_contexts(bkpy: Bkpy, repo: str, http: FileServer,
                                     tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    _write(ctx, {"Dockerfile": "FROM scratch\nCOPY --from=g / /g/\nCOPY --from=t / /t/\n",
                 "Stage.Dockerfile": "FROM g\nCOPY --from=t / /t/\n"})
    named = ("--build-context", f"g={repo}#feature:sub",
             "--build-context", f"t={http.url('/ctx.tar.gz')}")
    bkpy("build", *named, "-o", f"type=local,dest={tmp_path / 'copy'}", str(ctx))
    out = tmp_path / "copy"
    assert "g/feat.txt" in _files(out) and "g/ignored.txt" in _files(out)
    # a named HTTP context stays packed: one file, "context", 0600 (BuildKit's)
    assert _files(out / "t") == ["context"]
    assert stat.S_IMODE((out / "t" / "context").stat().st_mode) == 0o600
    assert (out / "t" / "context").read_bytes() == _tarball(True)
    bkpy("build", *named, "-f", str(ctx / "Stage.Dockerfile"),
         "-o", f"type=local,dest={tmp_path / 'from'}", str(ctx))
    assert _files(tmp_path / "from") == [
        ".dockerignore", "Dockerfile", "a.txt", "docker", "docker/Alt.Dockerfile",
        "feat.txt", "ignored.txt", "t", "t/context"]


@pytest.mark.parametrize(("args", "error"), [
    (("{repo}#nosuch",), "ERROR: failed to build: failed to solve: failed to read dockerfile: "
                         "failed to load cache key: repository does not contain ref nosuch"),
    (("{repo}#main:sub/docker",), "ERROR: failed to build: "
                                  "failed to solve: failed to read dockerfile: "
                                  "open Dockerfile: no such file or directory"),
    (("-f", "nope", "{repo}"), "ERROR: failed to build: "
                               "failed to solve: failed to read dockerfile: "
                               "open nope: no such file or directory"),
    (("-f", "nope", "{http}/ctx.tar.gz"), "ERROR: failed to build: failed to solve: failed to read "
                                          "dockerfile: open nope: no such file or directory"),
    (("{http}/missing.tar.gz",), "ERROR: failed to build: "
                                 "failed to solve: failed to read downloaded "
                                 "context: invalid response status 404"),
])
def test_errors(bkpy: Bkpy, repo: str, http: FileServer, args: tuple[str, ...],
                error: str) -> None:
    base = http.url("")
    r = bkpy("build", *(a.format(repo=repo, http=base) for a in args), check=False)
    assert r.code == 1, r.err
    assert error in r.err
    assert "Traceback" not in r.err


def test_unreachable_context(bkpy: Bkpy, tmp_path: Path) -> None:
    from tests.source.gitservers import free_port

    url = f"http://127.0.0.1:{free_port()}/ctx.tar.gz"
    r = bkpy("build", url, check=False)
    assert r.code == 1
    assert ('ERROR: failed to build: '
            f'failed to solve: failed to read downloaded context: Get "{url}": dial tcp '
            f"{url[7:].split('/')[0]}: connect: connection refused") in r.err


def test_syntax_accepted_and_refused(bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    for value in ("docker/dockerfile:1", "docker.io/docker/dockerfile:1.7",
                  "docker/dockerfile:1-labs", "docker/dockerfile:1@sha256:" + "ab" * 32):
        (ctx / "Dockerfile").write_text(f"# syntax={value}\nFROM scratch\nCOPY Dockerfile /\n")
        bkpy("build", "-o", f"type=local,dest={tmp_path / 'o'}", str(ctx))
    (ctx / "Dockerfile").write_text("# syntax=docker/dockerfile:2\nFROM scratch\n")
    r = bkpy("build", str(ctx), check=False)
    assert r.code == 1
    assert ("ERROR: failed to build: "
            "failed to solve: unsupported frontend \"docker/dockerfile:2\": bkpy runs "
            "no external frontends") in r.err
    assert " 1 | >>> # syntax=docker/dockerfile:2" in r.err
    assert "hint: remove the # syntax= line or use # syntax=docker/dockerfile:1" in r.err
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    r = bkpy("build", "--build-arg", "BUILDKIT_SYNTAX=example.com/fe:1", str(ctx), check=False)
    assert r.code == 1
    assert ("ERROR: failed to build: "
            "failed to solve: failed with build-arg:BUILDKIT_SYNTAX = example.com/fe:1: "
            'unsupported frontend "example.com/fe:1"') in r.err
    r = bkpy("build", "--call", "targets", "--build-arg", "BUILDKIT_SYNTAX=other/fe",
             str(ctx), check=False)
    assert r.code == 1 and 'unsupported frontend "other/fe"' in r.err


def test_through_bkpyd(tmp_path: Path, repo: str, http: FileServer) -> None:
    """The URL travels in the request: the daemon fetches, the client lends no context."""
    root = tmp_path / "daemon"
    import_busybox(root, write_busybox_layout(tmp_path / "busybox"))
    sock = tmp_path / "d.sock"
    daemon = Daemon(root, f"unix://{sock}", ["--addr", f"unix://{sock}"],
                    tmp_path / "d.log").start()
    try:
        env = client_env(tmp_path / "client", daemon)
        r = run_bkpy("build", "--progress", "rawjson", "-f", "docker/Alt.Dockerfile",
                     "-o", f"type=local,dest={tmp_path / 'git'}", f"{repo}#feature:sub",
                     env=env)
        assert "transferring" not in r.err  # nothing was lent
        assert f"[internal] load git source {repo}#feature:sub" in r.err
        assert (tmp_path / "git" / "alt" / "feat.txt").read_text() == "feat\n"
        run_bkpy("build", "-o", f"type=local,dest={tmp_path / 'tar'}",
                 http.url("/ctx.tar.gz"), env=env)
        assert _files(tmp_path / "tar") == [
            "t", "t/.dockerignore", "t/Dockerfile", "t/d", "t/d/Other", "t/d/y.txt",
            "t/x.txt"]
        ctx = tmp_path / "ctx"
        _write(ctx, {"Dockerfile": "FROM g\nCOPY --from=t / /t/\n"})
        run_bkpy("build", "--build-context", f"g={repo}", "--build-context",
                 f"t={http.url('/plain')}", "-o", f"type=local,dest={tmp_path / 'named'}",
                 str(ctx), env=env)
        assert "Dockerfile" in _files(tmp_path / "named")
        assert _files(tmp_path / "named" / "t") == ["context"]
        r = run_bkpy("build", f"{repo}#nosuch", env=env, check=False)
        assert r.code == 1
        assert "failed to read dockerfile: failed to load cache key: repository does not " \
               "contain ref nosuch" in r.err
    finally:
        daemon.stop()
