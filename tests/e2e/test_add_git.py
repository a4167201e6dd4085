"""``ADD <git url>`` through ``bkpy build``, against ``git http-backend`` and ``git daemon`` on
loopback (tests/source/gitservers.py). What is expected (files, modes, owners, submodules,
``.git`` only when kept, error lines) is what the newest BuildKit gave for the same
Dockerfiles (``buildctl ... --output type=tar``)."""

from __future__ import annotations

import os
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Bkpy, make_runner
from tests.source.gitservers import SSHD, GitDaemon, GitHTTP, Repos, SSHServer, make_repos

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Repos:
    return make_repos(tmp_path_factory.mktemp("git") / "repos")


@pytest.fixture(scope="module")
def http(repos: Repos) -> Iterator[GitHTTP]:
    server = GitHTTP(repos.base)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def daemon(repos: Repos) -> Iterator[GitDaemon]:
    server = GitDaemon(repos.base)
    yield server
    server.stop()


@pytest.fixture
def bkpy(tmp_path: Path) -> Bkpy:
    return make_runner(tmp_path / "state")


def _context(tmp_path: Path, dockerfile: str, name: str = "ctx") -> Path:
    ctx = tmp_path / name
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx


def _members(tar_path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(tar_path) as t:
        return {m.name: m for m in t.getmembers()}


def test_refs_subdir_and_submodules(bkpy: Bkpy, http: GitHTTP, daemon: GitDaemon,
                                    repos: Repos, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "\n".join([
        "FROM scratch",
        f"ADD {http.url}/app.git /main/",
        f"ADD {daemon.url}/app.git#v1 /tag/",
        f"ADD {http.url}/app.git#v1-ann /ann/",
        f"ADD {http.url}/app.git#{repos.main1} /sha/",
        f"ADD {http.url}/app.git#dev:sub /sub/",
        f"ADD {http.url}/app.git?submodules=false#main /nosub/",
    ]) + "\n")
    out = tmp_path / "out.tar"
    before = time.time()
    run = bkpy("build", str(ctx), "-o", f"type=tar,dest={out}")
    after = time.time()
    assert f"[2/6] ADD {daemon.url}/app.git#v1 /tag/" in run.err
    files = _members(out)
    readme = {d: files[f"{d}/README.md"] for d in ("main", "tag", "ann", "sha", "nosub")}
    with tarfile.open(out) as t:
        text = {d: t.extractfile(m).read() for d, m in readme.items()}  # type: ignore[union-attr]
    assert text == {"main": b"hello again\n", "tag": b"hello from git\n",
                    "ann": b"hello from git\n", "sha": b"hello from git\n",
                    "nosub": b"hello again\n"}
    # as BuildKit: git's modes, owned by root, mtimes of the checkout
    for name, mode in (("main/README.md", 0o644), ("main/run.sh", 0o755),
                       ("main/sub/dir", 0o755), ("main/lib/lib.txt", 0o644)):
        m = files[name]
        assert (m.mode, m.uid, m.gid) == (mode, 0, 0), name
        assert before - 1 <= m.mtime <= after + 1
    assert files["main/link"].issym() and files["main/link"].linkname == "README.md"
    assert "main/lib/.git" in files  # the submodule's gitdir file, kept as BuildKit keeps it
    assert not any(n.startswith("main/.git/") or n == "main/.git" for n in files)
    assert sorted(n for n in files if n.startswith("sub/")) == [
        "sub/dir", "sub/dir/deep.txt", "sub/other.txt"]
    assert files["nosub/lib"].isdir() and "nosub/lib/lib.txt" not in files


def test_keep_git_dir_gives_a_working_repository(fresh_bkpy: Bkpy, http: GitHTTP,
                                                 repos: Repos, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "\n".join([
        "FROM busybox:latest",
        f"ADD --keep-git-dir {http.url}/app.git#v1-ann /src",
        f"ADD {http.url}/app.git?keep-git-dir=true#dev /devbr",
        "RUN cat /src/.git/HEAD > /head.txt && test -f /devbr/.git/config",
    ]) + "\n")
    out = tmp_path / "out"
    fresh_bkpy("build", str(ctx), "-o", f"type=local,dest={out}")
    assert (out / "head.txt").read_text() == repos.main1 + "\n"
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME=os.devnull)

    def git(where: str, *args: str) -> str:
        return subprocess.run(["git", "-c", f"safe.directory={out / where}", "-C",
                               str(out / where), *args], check=True, env=env,
                              capture_output=True, text=True).stdout.strip()

    assert git("src", "log", "--format=%H %s") == f"{repos.main1} first"
    assert git("src", "describe", "--tags") == "v1-ann"
    assert git("src", "remote", "get-url", "origin") == f"{http.url}/app.git"
    assert git("src", "status", "--porcelain") == ""
    assert git("devbr", "rev-parse", "HEAD") == repos.dev


def test_checksum(bkpy: Bkpy, http: GitHTTP, repos: Repos, tmp_path: Path) -> None:
    ok = _context(tmp_path, f"FROM scratch\nADD --checksum={repos.main2[:12]} "
                            f"{http.url}/app.git#main /\n", "ok")
    bkpy("build", str(ok), "-o", f"type=local,dest={tmp_path / 'ok-out'}")
    assert (tmp_path / "ok-out" / "README.md").read_text() == "hello again\n"
    bad = _context(tmp_path, f"FROM scratch\nADD --checksum={repos.main1} "
                             f"{http.url}/app.git#main /\n", "bad")
    run = bkpy("build", str(bad), check=False)
    assert run.code == 1
    assert ("ERROR: failed to build: "
            f"failed to solve: failed to load cache key: expected checksum to match "
            f"{repos.main1}, got {repos.main2}") in run.err


def test_unknown_ref_and_missing_repository(bkpy: Bkpy, http: GitHTTP, daemon: GitDaemon,
                                            tmp_path: Path) -> None:
    ctx = _context(tmp_path, f"FROM scratch\nADD {http.url}/app.git#nope /\n")
    run = bkpy("build", str(ctx), check=False)
    assert run.code == 1
    assert ('ERROR: failed to build: '
            'failed to solve: failed to load cache key: repository does not contain '
            'ref nope, output: ""') in run.err
    assert "Traceback" not in run.err
    ctx = _context(tmp_path, f"FROM scratch\nADD {daemon.url}/missing.git /\n", "missing")
    run = bkpy("build", str(ctx), check=False)
    assert ("ERROR: failed to build: "
            f"failed to solve: failed to load cache key: error fetching default branch "
            f"for repository {daemon.url}/missing.git: git stderr:") in run.err
    assert "hint: check the repository URL" in run.err


def test_unchanged_ref_hits_without_fetching_a_push_misses(bkpy: Bkpy, tmp_path: Path) -> None:
    repos = make_repos(tmp_path / "repos")
    server = GitHTTP(repos.base)
    try:
        ctx = _context(tmp_path, f"FROM scratch\nADD {server.url}/app.git#main /\n")
        bkpy("build", str(ctx), "-o", f"type=local,dest={tmp_path / 'a'}")
        fetches = server.fetches
        run = bkpy("build", str(ctx), "-o", f"type=local,dest={tmp_path / 'b'}")
        assert "CACHED" in run.err
        assert server.fetches == fetches  # ls-remote only: nothing downloaded
        commit = repos.commit("new.txt", "new\n")
        run = bkpy("build", str(ctx), "-o", f"type=local,dest={tmp_path / 'c'}")
        assert (tmp_path / "c" / "new.txt").read_text() == "new\n"
        assert f"cache miss: git main of {server.url}/app.git moved: " \
               f"{repos.main2[:12]} -> {commit[:12]}" in run.err
        assert server.fetches == fetches + 1
    finally:
        server.stop()


def test_token_from_the_builds_secrets(bkpy: Bkpy, repos: Repos, tmp_path: Path) -> None:
    server = GitHTTP(repos.base, token="t0ken-123")
    try:
        (tmp_path / "token").write_text("t0ken-123")
        ctx = _context(tmp_path, f"FROM scratch\nADD {server.url}/app.git?submodules=false#main"
                                 " /\n")
        run = bkpy("build", str(ctx), check=False)
        assert run.code == 1
        assert "could not read Username for" in run.err
        assert "hint: the remote wants credentials" in run.err
        # BuildKit names the secret after the URL's host with its port
        secret = f"id=GIT_AUTH_TOKEN.127.0.0.1:{server.port},src={tmp_path / 'token'}"
        run = bkpy("build", str(ctx), "--secret", secret, "-o",
                   f"type=local,dest={tmp_path / 'out'}")
        assert (tmp_path / "out" / "README.md").read_text() == "hello again\n"
        assert "t0ken-123" not in run.err + run.out
    finally:
        server.stop()


def test_ssh_with_the_forwarded_agent(bkpy: Bkpy, repos: Repos, tmp_path: Path) -> None:
    assert os.getuid() == 0 and Path(SSHD).exists(), \
        "needs root and openssh-server (sshd): run scripts/setup.sh"
    server = SSHServer(repos.base, tmp_path / "sshd")
    try:
        ctx = _context(tmp_path, f"FROM scratch\nADD {server.url}/app.git#v1 /\n")
        run = bkpy("build", str(ctx), check=False)
        assert ('ERROR: failed to build: failed to solve: failed to load cache key: no SSH key '
                '"default" forwarded from the client') in run.err
        bkpy("build", str(ctx), "--ssh", f"default={server.agent_sock}", "-o",
             f"type=local,dest={tmp_path / 'out'}")
        assert (tmp_path / "out" / "README.md").read_text() == "hello from git\n"
        assert (tmp_path / "out" / "lib" / "lib.txt").read_text() == "library\n"
    finally:
        server.stop()
