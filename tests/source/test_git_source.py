"""The Git source under the real worker and solver, against real servers on loopback
(``git daemon`` and ``git http-backend``, see gitservers.py).

Expected results and error texts are what the newest BuildKit gave for the same
repositories (the referee, on ``ADD <url> /`` with ``--output type=tar``): files owned by
0:0 with git's modes (644, 755, symlinks), submodules checked out (their ``.git`` file
kept), ``.git`` only with keep-git-dir; the error lines quoted below.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from buildkit_py import llb
from buildkit_py.errors import UserError
from buildkit_py.solver.cache import CacheManager
from buildkit_py.solver.cancel import Cancelled, CancelToken
from buildkit_py.solver.progress import ProgressBus, ProgressWriter, VertexLog
from buildkit_py.solver.solver import Solver
from buildkit_py.solver.worker import OpContext
from buildkit_py.source import gitcli
from buildkit_py.source.git import GitSourceHandler, GitSources, git_handler_factory
from buildkit_py.worker.results import SnapshotResult
from buildkit_py.worker.session import BuildSession
from buildkit_py.worker.worker import BuilderWorker
from tests.source.gitservers import SSHD, GitDaemon, GitHTTP, Repos, SSHServer, make_repos


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Repos:
    return make_repos(tmp_path_factory.mktemp("git") / "repos")


@pytest.fixture
def http(repos: Repos) -> Iterator[GitHTTP]:
    # one server (and port) per test: a full-suite CI run once saw every request to a
    # long-lived one answered with non-HTTP bytes ("Received HTTP/0.9") mid-module
    server = GitHTTP(repos.base)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def daemon(repos: Repos) -> Iterator[GitDaemon]:
    server = GitDaemon(repos.base)
    yield server
    server.stop()


class Build:
    """A worker with the Git source and one solver (its cache kept across solves)."""

    def __init__(self, root: Path, secrets: dict[str, bytes] | None = None,
                 ssh: dict[str, Path] | None = None) -> None:
        self.shared = GitSources()
        self.worker = BuilderWorker(root / "state", runtime="runc",
                                    sources={"git": git_handler_factory(self.shared)})
        self.solver = Solver(self.worker, CacheManager(root / "solver"))
        self.secrets = secrets or {}
        self.ssh = ssh or {}
        self.logs: list[bytes] = []

    def solve(self, state: llb.State, out: Path) -> Path:
        bus = ProgressBus()
        bus.subscribe(lambda e: self.logs.append(e.data) if isinstance(e, VertexLog) else None)
        res = self.solver.solve(state.marshal(), progress=bus,
                                session=self.session())
        try:
            assert res.ref is not None
            inner = res.ref.result
            assert isinstance(inner, SnapshotResult)
            with self.worker.snapshots.read(inner) as root:
                subprocess.run(["cp", "-a", f"{root}/.", str(out)], check=True)
        finally:
            res.release()
        return out

    def error(self, state: llb.State) -> UserError:
        with pytest.raises(UserError) as e:
            self.solver.solve(state.marshal(), session=self.session())
        return e.value

    def session(self) -> BuildSession:
        return BuildSession(secrets=dict(self.secrets), ssh_sockets=dict(self.ssh))

    def close(self) -> None:
        self.solver.close()
        self.worker.close()


@pytest.fixture
def build(tmp_path: Path) -> Iterator[Build]:
    b = Build(tmp_path)
    yield b
    b.close()


def _out(tmp_path: Path, name: str = "out") -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


def _tree(root: Path) -> dict[str, str]:
    """path -> ``mode uid:gid`` (and a symlink's target) of everything under ``root``."""
    out = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(top) / name
            st = p.lstat()
            text = f"{stat.filemode(st.st_mode)} {st.st_uid}:{st.st_gid}"
            if p.is_symlink():
                text += " -> " + os.readlink(p)
            out[str(p.relative_to(root))] = text
    return out


# what the referee's tar export of `ADD <app.git> /` listed (main's head)
EXPECTED_MAIN = {
    ".gitmodules": "-rw-r--r-- 0:0", "README.md": "-rw-r--r-- 0:0",
    "lib": "drwxr-xr-x 0:0", "lib/.git": "-rw-r--r-- 0:0", "lib/lib.txt": "-rw-r--r-- 0:0",
    "link": "lrwxrwxrwx 0:0 -> README.md", "run.sh": "-rwxr-xr-x 0:0",
    "sub": "drwxr-xr-x 0:0", "sub/dir": "drwxr-xr-x 0:0",
    "sub/dir/deep.txt": "-rw-r--r-- 0:0", "sub/other.txt": "-rw-r--r-- 0:0",
}


def test_default_branch_over_http(build: Build, http: GitHTTP, tmp_path: Path) -> None:
    out = build.solve(llb.git(f"{http.url}/app.git"), _out(tmp_path))
    assert _tree(out) == EXPECTED_MAIN
    assert (out / "README.md").read_text() == "hello again\n"
    assert (out / "lib" / ".git").read_text().startswith("gitdir: ")


@pytest.mark.parametrize(("ref", "readme"), [
    ("main", "hello again\n"), ("v1", "hello from git\n"), ("v1-ann", "hello from git\n"),
    ("refs/tags/v1-ann", "hello from git\n"), ("dev", "hello from git\n"),
])
def test_refs_over_git_daemon(build: Build, daemon: GitDaemon, tmp_path: Path, ref: str,
                              readme: str) -> None:
    out = build.solve(llb.git(f"{daemon.url}/app.git", ref), _out(tmp_path))
    assert (out / "README.md").read_text() == readme
    assert (out / "dev.txt").exists() == (ref == "dev")
    assert not (out / ".git").exists()
    assert (out / "lib" / "lib.txt").read_text() == "library\n"


def test_full_commit_sha(build: Build, http: GitHTTP, repos: Repos, tmp_path: Path) -> None:
    out = build.solve(llb.git(f"{http.url}/app.git", repos.main1), _out(tmp_path))
    assert (out / "README.md").read_text() == "hello from git\n"


def test_short_sha_is_a_ref_name_as_in_buildkit(build: Build, http: GitHTTP,
                                                repos: Repos) -> None:
    err = build.error(llb.git(f"{http.url}/app.git", repos.main1[:10]))
    assert err.text() == (f"failed to load cache key: repository does not "
                          f'contain ref {repos.main1[:10]}, output: ""')


def test_subdir(build: Build, http: GitHTTP, tmp_path: Path) -> None:
    out = build.solve(llb.git(f"{http.url}/app.git", "v1", subdir="sub"), _out(tmp_path))
    assert _tree(out) == {"dir": "drwxr-xr-x 0:0", "dir/deep.txt": "-rw-r--r-- 0:0",
                          "other.txt": "-rw-r--r-- 0:0"}


@pytest.mark.parametrize(("subdir", "message"), [
    ("nosuch", 'invalid subdir nosuch: failed to lstat "nosuch": statat nosuch: no such file '
               "or directory"),
    ("README.md", 'invalid subdir README.md: git subpath "README.md" contains non-directory '
                  '"README.md"'),
])
def test_bad_subdir(build: Build, http: GitHTTP, subdir: str, message: str) -> None:
    err = build.error(llb.git(f"{http.url}/app.git", "main", subdir=subdir))
    assert err.text() == message


def test_skip_submodules(build: Build, http: GitHTTP, tmp_path: Path) -> None:
    out = build.solve(llb.git(f"{http.url}/app.git", "main", skip_submodules=True),
                      _out(tmp_path))
    assert (out / "lib").is_dir() and not any((out / "lib").iterdir())


def test_keep_git_dir(build: Build, http: GitHTTP, repos: Repos, tmp_path: Path) -> None:
    out = build.solve(llb.git(f"{http.url}/app.git", "v1-ann", keep_git_dir=True),
                      _out(tmp_path))
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME=os.devnull)

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(out), *args], check=True, env=env,
                              capture_output=True, text=True).stdout.strip()

    assert git("log", "--format=%H") == repos.main1  # shallow: the one commit
    assert git("describe", "--tags") == "v1-ann"
    assert git("remote", "get-url", "origin") == f"{http.url}/app.git"
    assert git("status", "--porcelain") == ""
    assert (out / "lib" / ".git").read_text() == "gitdir: ../.git/modules/lib\n"
    assert stat.S_IMODE((out / ".git" / "HEAD").stat().st_mode) == 0o644


def test_checksum(build: Build, http: GitHTTP, repos: Repos, tmp_path: Path) -> None:
    url = f"{http.url}/app.git"
    out = build.solve(llb.git(url, "main", checksum=repos.main2[:10]), _out(tmp_path))
    assert (out / "README.md").read_text() == "hello again\n"
    # an annotated tag matches the commit it points to
    build.solve(llb.git(url, "v1-ann", checksum=repos.main1), _out(tmp_path, "tag"))
    err = build.error(llb.git(url, "main", checksum=repos.main1))
    assert err.text() == (f"failed to load cache key: expected checksum to "
                          f"match {repos.main1}, got {repos.main2}")
    err = build.error(llb.git(url, repos.main1, checksum=repos.main2))
    assert err.text() == (f"failed to load cache key: expected checksum to "
                          f"match {repos.main2}, got {repos.main1}")
    err = build.error(llb.git(url, "main", checksum="zz"))
    assert err.text() == ("failed to load cache key: invalid checksum zz for "
                          "Git URL, expected hex commit hash")


def test_errors_name_the_url(build: Build, daemon: GitDaemon, http: GitHTTP) -> None:
    err = build.error(llb.git(f"{http.url}/app.git", "nope"))
    assert err.text() == 'failed to load cache key: repository does not ' \
                         'contain ref nope, output: ""'
    err = build.error(llb.git(f"{daemon.url}/missing.git"))
    assert err.text() == (
        f"failed to load cache key: error fetching default branch for "
        f"repository {daemon.url}/missing.git: git stderr:\nfatal: remote error: access "
        "denied or repository not exported: /missing.git\n: exit status 128")
    assert err.hint == "check the repository URL"
    err = build.error(llb.git("http://127.0.0.1:1/app.git", "main"))
    assert err.text().startswith(
        "failed to load cache key: failed to fetch remote "
        "http://127.0.0.1:1/app.git: git stderr:\nfatal: unable to access "
        "'http://127.0.0.1:1/app.git/': Failed to connect to 127.0.0.1 port 1 ")
    assert err.text().endswith(": exit status 128")
    assert err.hint == "the remote is unreachable"


def test_unchanged_ref_hits_without_fetching_and_a_push_misses(
        tmp_path: Path, build: Build) -> None:
    repos = make_repos(tmp_path / "repos")
    server = GitHTTP(repos.base)
    try:
        url = f"{server.url}/app.git"
        build.solve(llb.git(url, "main"), _out(tmp_path, "a"))
        fetches = server.fetches
        assert fetches == 2  # the repository and its submodule
        out = build.solve(llb.git(url, "main"), _out(tmp_path, "b"))
        assert server.fetches == fetches  # a cache hit: ls-remote only
        assert not (out / "new.txt").exists()
        repos.commit("new.txt", "new\n")
        out = build.solve(llb.git(url, "main"), _out(tmp_path, "c"))
        assert (out / "new.txt").read_text() == "new\n"
        # the moved branch (shallow); the submodule's commit is already in the cache repo
        assert server.fetches == fetches + 1
    finally:
        server.stop()


def _spy_git(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every git command line the source runs, from now on."""
    argvs: list[list[str]] = []
    popen = gitcli.subprocess.Popen

    def spy(argv: list[str], **kw: Any) -> Any:
        if argv[0] == "git":
            argvs.append(list(argv))
        return popen(argv, **kw)

    monkeypatch.setattr(gitcli.subprocess, "Popen", spy)
    return argvs


def test_one_ls_remote_per_build_per_remote_and_ref(tmp_path: Path, build: Build,
                                                    http: GitHTTP,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"{http.url}/app.git"
    argvs = _spy_git(monkeypatch)
    both = llb.merge([llb.git(url, "dev", subdir="sub"), llb.git(url, "dev", subdir="sub/dir")])
    out = build.solve(both, _out(tmp_path))
    assert (out / "deep.txt").exists() and (out / "other.txt").exists()
    assert sum("ls-remote" in argv for argv in argvs) == 1
    argvs.clear()
    build.solve(both, _out(tmp_path, "again"))  # the next build asks again
    assert sum("ls-remote" in argv for argv in argvs) == 1
    assert not any("fetch" in argv for argv in argvs)  # and hits


def _handler(worker: BuilderWorker, state: llb.State, shared: GitSources,
             ) -> tuple[GitSourceHandler, OpContext]:
    defn = state.marshal()
    op = next(defn[d] for d in defn.digests() if defn[d].WhichOneof("op") == "source")
    ctx = OpContext(vertex=None, cancel=CancelToken(),  # type: ignore[arg-type]
                    progress=ProgressWriter("sha256:0", "git", lambda e: None))
    return GitSourceHandler(worker, op, shared), ctx


def test_a_ref_moved_after_keying_still_checks_out_the_keyed_commit(
        tmp_path: Path, build: Build) -> None:
    repos = make_repos(tmp_path / "repos")
    server = GitHTTP(repos.base)
    try:
        handler, ctx = _handler(build.worker, llb.git(f"{server.url}/app.git", "main"),
                                build.shared)
        key = handler.cache_map(ctx).digest
        repos.commit("new.txt", "new\n")
        [result] = handler.exec(ctx, [])
        assert isinstance(result, SnapshotResult)
        with build.worker.snapshots.read(result) as root:
            assert not (root / "new.txt").exists()
            assert (root / "README.md").read_text() == "hello again\n"
        again, ctx2 = _handler(build.worker, llb.git(f"{server.url}/app.git", "main"),
                               GitSources())
        assert again.cache_map(ctx2).digest != key
    finally:
        server.stop()


def test_cache_key_pins_the_commit_not_the_url(build: Build, http: GitHTTP,
                                               daemon: GitDaemon) -> None:
    via_http, ctx = _handler(build.worker, llb.git(f"{http.url}/app.git", "v1"), GitSources())
    via_git, ctx2 = _handler(build.worker, llb.git(f"{daemon.url}/app.git", "v1-ann"),
                             GitSources())
    # a lightweight and an annotated tag of one commit: one checkout
    assert via_http.cache_map(ctx).digest == via_git.cache_map(ctx2).digest
    kept, ctx3 = _handler(build.worker, llb.git(f"{http.url}/app.git", "v1", keep_git_dir=True),
                          GitSources())
    assert kept.cache_map(ctx3).digest != via_http.cache_map(ctx).digest


def test_token_auth_from_the_builds_secrets(tmp_path: Path, repos: Repos,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    server = GitHTTP(repos.base, token="s3cret-t0ken")
    argvs = _spy_git(monkeypatch)
    url = f"{server.url}/app.git"
    host = f"127.0.0.1:{server.port}"
    try:
        anonymous = Build(tmp_path / "anon")
        err = anonymous.error(llb.git(url, "main"))
        anonymous.close()
        assert err.text() == (
            f"failed to load cache key: failed to fetch remote {url}: git stderr:\nfatal: "
            f"could not read Username for 'http://{host}': terminal prompts disabled\n"
            ": exit status 128")
        assert err.hint is not None and "GIT_AUTH_TOKEN.<host>" in err.hint
        # BuildKit's secret names: with the port, or without any host
        for i, name in enumerate((f"GIT_AUTH_TOKEN.{host}", "GIT_AUTH_TOKEN")):
            b = Build(tmp_path / f"b{i}", {name: b"s3cret-t0ken"})
            out = b.solve(llb.git(url, "main", skip_submodules=True), _out(tmp_path, f"o{i}"))
            b.close()
            assert (out / "README.md").read_text() == "hello again\n"
            assert not any(b"s3cret" in chunk for chunk in b.logs)
        # as in BuildKit, the token is for the remote only: a submodule on the same host
        # gets none (the referee failed the same way)
        b = Build(tmp_path / "sub", {f"GIT_AUTH_TOKEN.{host}": b"s3cret-t0ken"})
        err = b.error(llb.git(url, "main"))
        b.close()
        assert err.text().startswith(f"failed to update submodules for {url}: git stderr:\n"
                                     f"Submodule 'lib' ({server.url}/lib.git) registered for "
                                     "path 'lib'\n")
        assert "could not read Username" in err.text()
        for i, secrets in enumerate(({f"GIT_AUTH_TOKEN.{host}": b"nope"},
                                     {"GIT_AUTH_TOKEN.127.0.0.1": b"s3cret-t0ken"},
                                     {"GIT_AUTH_TOKEN.example.com": b"s3cret-t0ken"})):
            b = Build(tmp_path / f"w{i}", secrets)
            assert "could not read Username" in b.error(llb.git(url, "dev")).text()
            b.close()
    finally:
        server.stop()
    assert argvs and not any("s3cret" in arg for argv in argvs for arg in argv)
    assert server.state.auth_seen[-1].startswith("basic ")


def test_missing_ssh_agent_is_named(build: Build) -> None:
    err = build.error(llb.git("git@127.0.0.1:app.git", "main"))
    assert err.text() == ('failed to load cache key: no SSH key "default" '
                          "forwarded from the client")


@pytest.fixture(scope="module")
def sshd(repos: Repos, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    assert os.getuid() == 0 and Path(SSHD).exists(), \
        "needs root and openssh-server (sshd): run scripts/setup.sh"
    server = SSHServer(repos.base, tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


def test_ssh_with_the_builds_agent(tmp_path: Path, sshd: SSHServer,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    argvs = _spy_git(monkeypatch)
    url = f"{sshd.url}/app.git"
    # no known hosts in the LLB: the host key is accepted on first use
    b = Build(tmp_path / "a", ssh={"default": sshd.agent_sock})
    out = b.solve(llb.git(url, "v1"), _out(tmp_path, "a-out"))
    assert (out / "README.md").read_text() == "hello from git\n"
    assert (out / "lib" / "lib.txt").read_text() == "library\n"  # ../lib.git over ssh too
    # the known hosts the LLB carries
    out = b.solve(llb.git(url, "dev", known_ssh_hosts=sshd.known_hosts), _out(tmp_path, "b"))
    assert (out / "dev.txt").exists()
    wrong = sshd.known_hosts.split()[0] + " ssh-ed25519 " + \
        "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
    err = b.error(llb.git(url, "main", known_ssh_hosts=wrong))
    assert "Host key verification failed" in err.text()
    assert err.hint == "the remote's ssh host key is not the known one"
    b.close()
    # another agent id than the LLB names
    other = Build(tmp_path / "c", ssh={"work": sshd.agent_sock})
    err = other.error(llb.git(url, "main", mount_ssh_sock="default"))
    assert err.text() == ('failed to load cache key: no SSH key "default" forwarded from the '
                          "client")
    out = other.solve(llb.git(url, "main", mount_ssh_sock="work"), _out(tmp_path, "c-out"))
    assert (out / "README.md").read_text() == "hello again\n"
    other.close()
    assert argvs and not any(str(sshd.agent_sock) in a or "StrictHostKeyChecking" in a
                             for argv in argvs for a in argv)  # the agent, ssh options: env


def test_mtime_commit_sets_every_entry_to_the_commit_time(build: Build, http: GitHTTP,
                                                          repos: Repos) -> None:
    handler, ctx = _handler(build.worker, llb.git(f"{http.url}/app.git", "v1"), GitSources())
    handler.ident = replace(handler.ident, mtime="commit")
    assert handler.cache_map(ctx).digest != _handler(
        build.worker, llb.git(f"{http.url}/app.git", "v1"), GitSources())[0].cache_map(ctx).digest
    [result] = handler.exec(ctx, [])
    assert isinstance(result, SnapshotResult)
    with build.worker.snapshots.read(result) as root:
        times = {p: p.lstat().st_mtime for p in [root / "README.md", root / "link",
                                                  root / "sub", root / "lib" / "lib.txt"]}
    assert set(times.values()) == {1_600_000_100}  # the commit's date (make_repos)


def test_cancel_stops_a_running_git(build: Build, http: GitHTTP) -> None:
    handler, ctx = _handler(build.worker, llb.git(f"{http.url}/app.git", "main"), GitSources())
    handler.cancel()  # before: nothing starts
    with pytest.raises(Cancelled):
        handler.cache_map(ctx)


def test_cancel_kills_a_hanging_git(build: Build) -> None:
    import socket
    import threading
    import time

    with socket.socket() as silent:  # accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        handler, ctx = _handler(build.worker, llb.git(f"git://127.0.0.1:{port}/x.git", "main"),
                                GitSources())
        threading.Timer(0.5, handler.cancel).start()
        started = time.monotonic()
        with pytest.raises(Cancelled):
            handler.cache_map(ctx)
        assert time.monotonic() - started < 5
