"""A Git source's step on a cache miss: fetch the pinned commit into the remote's cache
repository, then check it out into a new snapshot, with BuildKit's sequence of git commands
(so the result is what BuildKit's is: the files with the modes git gives, owned by the
builder (root), mtimes of the checkout unless ``git.mtime=commit``, submodules checked out,
``.git`` only with keep-git-dir).

The cache repository is bare, one per remote URL under ``<worker root>/git/repos``, and
reused by every later fetch from that remote: a branch or tag is fetched with
``--depth=1``, a commit SHA with its history (a server may refuse a shallow fetch of an
unadvertised commit), nothing when the commit is already there. Branches are stored under
``refs/tags/<name>`` so the next fetch of them is incremental. If the remote moved the ref
after the key was made, the step still checks out the commit the key names (fetched by SHA
if needed), so a key always means one tree. A repository git refuses to update (a tag moved
on the remote, a branch now a directory of branches) is started afresh once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from buildkit_py.errors import BuildError
from buildkit_py.gostrings import go_quote
from buildkit_py.solver.cancel import CancelToken
from buildkit_py.source.gitcli import GitCLI, GitCommandError, is_commit_sha
from buildkit_py.source.gitref import GitIdentifier, default_branch, fail, redact
from buildkit_py.worker.results import SnapshotResult

if TYPE_CHECKING:
    from buildkit_py.worker.ops.base import OpWorker


class _StartAfresh(Exception):
    """The cache repository cannot take this fetch; a new one can."""


def repo_dir(worker_root: Path, remote: str) -> Path:
    """The bare cache repository of ``remote``."""
    return worker_root / "git" / "repos" / hashlib.sha256(remote.encode()).hexdigest()[:32]


def checkout_snapshot(worker: OpWorker, git: GitCLI, ident: GitIdentifier, commit: str,
                      cancel: CancelToken) -> SnapshotResult:
    """Fetch ``commit`` (what the key pinned) and check it out as a new snapshot; the caller
    holds the remote's lock."""
    bare = repo_dir(worker.root, ident.remote)
    try:
        ref = _fetch(git, ident, bare, commit, reset=False)
    except _StartAfresh:
        ref = _fetch(git, ident, bare, commit, reset=True)
    repo = git.new(git_dir=bare)
    if ident.checksum:
        _verify_checksum(repo, ident, ref)
    cancel.raise_if_cancelled()
    with worker.snapshots.write(None) as layer:
        _checkout(repo, ident, bare, ref, layer.path)
    assert layer.result is not None
    return layer.result


def _init(git: GitCLI, ident: GitIdentifier, bare: Path, sha256: bool) -> None:
    shutil.rmtree(bare, ignore_errors=True)
    bare.mkdir(parents=True)
    args = ["-c", "init.defaultBranch=master", "init", "--bare"]
    if sha256:
        args.append("--object-format=sha256")
    try:
        git.run(*args)
        git.run("remote", "add", "origin", ident.remote)
    except GitCommandError as err:
        shutil.rmtree(bare, ignore_errors=True)
        raise fail(f"failed to init repo at {bare}", err) from None


def _fetch(git0: GitCLI, ident: GitIdentifier, bare: Path, commit: str, *, reset: bool) -> str:
    """Make ``commit`` present in the cache repository under the ref; the ref fetched."""
    git = git0.new(git_dir=bare)
    if reset or not (bare / "HEAD").is_file():
        _init(git, ident, bare, len(commit) == 64)
    ref = ident.ref or default_branch(git, ident.remote)
    if is_commit_sha(ref):
        try:
            git.run("cat-file", "-e", "--", ref + "^{commit}")
            return ref  # already here: nothing to fetch
        except GitCommandError:
            pass
    # a local ref makes the next fetch advertise what we have; forced, as a branch moves
    target = ref if ref.startswith("refs/tags/") else "tags/" + ref
    (bare / "shallow.lock").unlink(missing_ok=True)
    args = ["fetch"]
    if not is_commit_sha(ref):
        args += ["--depth=1", "--no-tags"]
    else:
        args.append("--tags")
        if (bare / "shallow").exists():
            args.append("--unshallow")
    args.append("origin")
    args += [ref] if is_commit_sha(ref) else ["--force", "--", f"{ref}:{target}"]
    try:
        git.run(*args)
    except GitCommandError as err:
        if ("rejected" in err.stderr and "(would clobber existing tag)" in err.stderr) or (
                "some local refs could not be updated;" in err.stderr and (
                    "(unable to update local ref)" in err.stderr
                    or "refname conflict" in err.stderr)):
            if not reset:
                raise _StartAfresh from None
        raise fail(f"failed to fetch remote {redact(ident.remote)}", err) from None
    got = _rev_parse(git, ref)
    if got != commit:
        _pin(git, ident, ref, target, commit, bare)
    return ref


def _rev_parse(git: GitCLI, rev: str) -> str:
    try:
        return git.run("rev-parse", rev).strip()
    except GitCommandError as err:
        raise fail(f"failed to rev-parse {rev}", err) from None


def _pin(git: GitCLI, ident: GitIdentifier, ref: str, target: str, commit: str,
         bare: Path) -> None:
    """The remote moved ``ref`` after the key was made: point it back at ``commit``."""
    local = target if target.startswith("refs/") else "refs/" + target
    try:
        git.run("cat-file", "-e", commit)
    except GitCommandError:
        args = ["fetch", "--tags"]
        if (bare / "shallow").exists():
            args.append("--unshallow")
        try:
            git.run(*args, "origin", commit)
            git.run("reflog", "expire", "--all", "--expire=now")
        except GitCommandError as err:
            raise fail(f"failed to fetch remote {redact(ident.remote)}", err) from None
        try:
            git.run("cat-file", "-e", commit)
        except GitCommandError:
            raise BuildError(f"fetched ref {ref} does not match expected commit {commit} and "
                             "commit can not be found in the repository",
                             hint="the remote rewrote the ref; build again to pick up its "
                                  "new commit") from None
    try:
        git.run("update-ref", local, commit, "--no-deref")
    except GitCommandError as err:
        raise fail(f"failed to update {local}", err) from None


def _verify_checksum(repo: GitCLI, ident: GitIdentifier, ref: str) -> None:
    actual = _rev_parse(repo, ref)
    if actual.startswith(ident.checksum):
        return
    mismatch = BuildError(f"expected checksum to match {ident.checksum}, got {actual}")
    try:
        peeled = repo.run("rev-parse", ref + "^{}").strip()
    except GitCommandError:
        raise mismatch from None
    if peeled == actual:
        raise mismatch
    if not peeled.startswith(ident.checksum):
        raise BuildError(f"expected checksum to match {ident.checksum}, got {actual} or "
                         f"{peeled}")


def _checkout(repo: GitCLI, ident: GitIdentifier, bare: Path, ref: str, dest: Path) -> None:
    """Check ``ref`` of the cache repository out into ``dest`` (an empty snapshot)."""
    remote = redact(ident.remote)
    subdir = ident.subdir or "."
    tree = dest
    git_dir = bare
    try:
        if ident.keep_git_dir and subdir == ".":
            git_dir = dest / ".git"
            _checkout_with_git_dir(repo, ident, bare, ref, dest, git_dir)
        else:
            if subdir != ".":
                tree = Path(tempfile.mkdtemp(prefix="checkout", dir=dest))
            try:
                repo.new(work_tree=tree).run("checkout", "--no-overlay", ref, "--", ".")
            except GitCommandError as err:
                raise fail(f"failed to checkout remote {remote}", err) from None
        work = repo.new(work_tree=tree, git_dir=git_dir)
        if not ident.skip_submodules:
            try:
                work.run("submodule", "update", "--init", "--recursive", "--depth=1")
            except GitCommandError as err:
                raise fail(f"failed to update submodules for {remote}", err) from None
        if subdir != ".":
            _lift_subdir(tree, subdir, dest)
        if ident.mtime == "commit":
            _set_mtimes(dest, _commit_time(work, ref, remote))
    except GitCommandError as err:
        raise fail(f"failed to checkout remote {remote}", err) from None


def _checkout_with_git_dir(repo: GitCLI, ident: GitIdentifier, bare: Path, ref: str,
                           dest: Path, git_dir: Path) -> None:
    """keep-git-dir: a new repository in ``dest/.git`` holding just the commit (and the tag
    object of an annotated tag), its origin the remote (credentials masked)."""
    remote = redact(ident.remote)
    sha256 = len(repo.run("rev-parse", ref).strip()) == 64
    clone = repo.new(work_tree=dest, git_dir=git_dir)
    args = ["-c", "init.defaultBranch=master", "init"]
    if sha256:
        args.append("--object-format=sha256")
    clone.run(*args)
    # over file:// rather than a local path: no local-clone shortcuts into the cache repo
    clone.run("remote", "add", "origin", "file://" + str(bare))
    annotated = repo.run("cat-file", "-t", ref).strip() == "tag"
    if annotated:
        pull = f"{ref}:{ref if ref.startswith('refs/tags/') else 'refs/tags/' + ref}"
    elif is_commit_sha(ref):
        pull = "refs/buildkit/" + uuid.uuid4().hex
        repo.run("update-ref", pull, ref)
    else:
        pull = f"{ref}:{ref}"
    clone.run("fetch", "-u", "--depth=1", "--", "origin", pull)
    try:
        clone.run("checkout", "FETCH_HEAD")
    except GitCommandError as err:
        raise fail(f"failed to checkout remote {remote}", err) from None
    clone.run("remote", "set-url", "origin", remote)
    clone.run("reflog", "expire", "--all", "--expire=now")
    (git_dir / "FETCH_HEAD").unlink(missing_ok=True)


def _lift_subdir(tree: Path, subdir: str, dest: Path) -> None:
    """Move ``subdir``'s entries of the checkout in ``tree`` up to ``dest``; only
    directories (no symlinks, no files) may lead there."""
    parts = subdir.split("/")
    for i in range(len(parts)):
        p = "/".join(parts[: i + 1])
        try:
            st = os.lstat(tree / p)
        except FileNotFoundError:
            raise BuildError(f"invalid subdir {subdir}: failed to lstat {go_quote(p)}: statat {p}: "
                             "no such file or directory",
                             hint="the path after ':' must be a directory of the "
                                  "repository") from None
        if not stat.S_ISDIR(st.st_mode):
            raise BuildError(f"invalid subdir {subdir}: git subpath {go_quote(subdir)} contains "
                             f"non-directory {go_quote(p)}",
                             hint="the path after ':' must be a directory of the repository")
    for name in os.listdir(tree / subdir):
        os.rename(tree / subdir / name, dest / name)
    shutil.rmtree(tree)


def _commit_time(git: GitCLI, ref: str, remote: str) -> int:
    try:
        return int(git.run("log", "-1", "--format=%ct", ref + "^{commit}").strip())
    except (GitCommandError, ValueError) as err:
        raise BuildError(f"failed to get commit time for {remote}: {err}") from None


def _set_mtimes(root: Path, when: int) -> None:
    """Every entry's mtime (and atime) to ``when``; directories last, deepest first."""
    dirs: list[str] = []
    for top, subdirs, files in os.walk(root):
        dirs.append(top)
        for name in files + [d for d in subdirs if os.path.islink(os.path.join(top, d))]:
            os.utime(os.path.join(top, name), (when, when), follow_symlinks=False)
    for d in reversed(dirs):
        os.utime(d, (when, when))
