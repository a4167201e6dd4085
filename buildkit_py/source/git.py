"""Git sources (``ADD https://host/repo.git#ref:subdir``, ``git@host:repo.git``, ``git://``,
``ssh://``) as a solver op: keyed by the commit the ref names, checked out on a miss.

The key is the commit, not the ref: ``cache_map`` asks the remote (``git ls-remote``, once per
build per remote and ref, under the remote's lock) which commit the ref names, and keys the
step on that commit with the options that change the checkout (subdir, ``.git`` kept,
submodules, mtimes), as BuildKit does; the remote's URL is not in the key, so the same
commit from a mirror is a hit. A ref that did not move is a cache hit without fetching; a
moved branch is a miss; a full commit SHA needs no network at all. An annotated tag keys on
the commit it points to unless ``.git`` is kept (then the tag object is in the result).

What names what is ``gitref.py``; fetching and checking out ``gitfetch.py``; running git
``gitcli.py``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buildkit_py.errors import BuildError, UserError
from buildkit_py.gostrings import go_quote
from buildkit_py.solver.cancel import Cancelled
from buildkit_py.solver.worker import CacheMap, OpContext, OpHandler, Result
from buildkit_py.source.gitcli import GitCLI, GitCommandError, Processes, is_commit_sha
from buildkit_py.source.gitfetch import checkout_snapshot
from buildkit_py.source.gitref import (
    Resolved,
    auth_header,
    check_checksum,
    default_branch,
    fail,
    parse_identifier,
    parse_ls_remote,
    redact,
    token_scope,
)

if TYPE_CHECKING:
    from buildkit_py.llb import ops_pb2
    from buildkit_py.worker.ops.base import HandlerFactory, OpWorker



class GitSources:
    """What Git sources share across steps and builds: one lock per remote (its cache
    repository is used by one step at a time) and, per build, what each remote's refs
    resolved to, so two steps of one build see the same commit and ask once."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # a session's finalizer may run while it is held
        self._remote_locks: dict[str, threading.Lock] = {}
        self._resolved: dict[int, dict[str, Resolved]] = {}

    def remote_lock(self, remote: str) -> threading.Lock:
        with self._lock:
            return self._remote_locks.setdefault(remote, threading.Lock())

    def resolved(self, build: object | None, key: str, checksum: str,
                 resolve: Callable[[], Resolved]) -> Resolved:
        """``resolve()`` once per ``build`` (a session object) and ``key``."""
        if build is None:
            return resolve()
        with self._lock:
            hit = self._resolved.get(id(build), {}).get(key)
        if hit is not None and (not checksum or hit.sha.startswith(checksum)):
            return hit
        found = resolve()
        with self._lock:
            if id(build) not in self._resolved:
                try:
                    weakref.finalize(build, self._forget, id(build))
                except TypeError:  # cannot tell when it ends: remember nothing
                    return found
            self._resolved.setdefault(id(build), {})[key] = found
        return found

    def _forget(self, build_id: int) -> None:
        with self._lock:
            self._resolved.pop(build_id, None)


class GitSourceHandler:
    """``git://`` source vertex: keyed by the resolved commit, checked out on a miss."""

    def __init__(self, worker: OpWorker, op: ops_pb2.Op, shared: GitSources) -> None:
        self.worker = worker
        self.shared = shared
        self.ident = parse_identifier(op.source.identifier, dict(op.source.attrs))
        self.processes = Processes()
        self._resolved: Resolved | None = None
        self._commit = ""  # what the ref named when keyed (an annotated tag's object, or a commit)

    def git(self, ctx: OpContext) -> GitCLI:
        """git with this build's credentials for the remote."""
        ident = self.ident
        config: tuple[tuple[str, str], ...] = ()
        header = auth_header(ident, self.worker.secrets(ctx))
        if header is not None:
            config = ((f"http.{token_scope(ident.remote)}.extraheader",
                       f"Authorization: {header}"),)
        sock = None
        if ident.mount_ssh_sock:
            path = self.worker.ssh_socket(ctx, ident.mount_ssh_sock)
            if path is None:
                raise BuildError(f"no SSH key {go_quote(ident.mount_ssh_sock)} forwarded "
                                 "from the client",
                                 hint=f"pass --ssh {ident.mount_ssh_sock} (an ssh agent "
                                      "holding a key the remote accepts)")
            sock = str(path)
        known = str(self._known_hosts_file()) if ident.known_ssh_hosts else None
        return GitCLI(self.processes, config=config, ssh_auth_sock=sock, known_hosts=known,
                      log=ctx.progress.log)

    def _known_hosts_file(self) -> Path:
        text = self.ident.known_ssh_hosts
        path = self.worker.root / "git" / "known_hosts" / \
            hashlib.sha256(text.encode()).hexdigest()[:32]
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)
        return path

    def _resolve(self, ctx: OpContext) -> Resolved:
        ident = self.ident
        check_checksum(ident)
        if is_commit_sha(ident.ref):
            if ident.checksum and not ident.ref.startswith(ident.checksum):
                raise BuildError(f"expected checksum to match {ident.checksum}, got "
                                 f"{ident.ref}")
            return Resolved(ident.ref, ident.ref)

        def ls_remote() -> Resolved:
            git = self.git(ctx)
            ref = ident.ref or default_branch(git, ident.remote)
            try:
                out = git.run("ls-remote", "--", ident.remote, ref, ref + "^{}")
            except GitCommandError as err:
                raise fail(f"failed to fetch remote {redact(ident.remote)}", err) from None
            return parse_ls_remote(out, ref, ident.checksum, ident.keep_git_dir)

        sessions = ctx.sessions()
        with self.shared.remote_lock(ident.remote):  # one ls-remote at a time, then memo hits
            return self.shared.resolved(sessions[0] if sessions else None,
                                        f"{ident.remote}#{ident.ref}", ident.checksum,
                                        ls_remote)

    # solver.worker.OpHandler ------------------------------------------------------------

    def cache_map(self, ctx: OpContext) -> CacheMap:
        try:
            found = self._resolve(ctx)
        except Cancelled:
            raise
        except UserError as err:
            raise BuildError(f"failed to load cache key: {err.message}", hint=err.hint) from None
        self._resolved = found
        if is_commit_sha(found.ref):
            key = self.ident.cache_key(found.ref, found.ref)
        else:
            key = self.ident.cache_key(found.commit or found.sha, found.ref)
        self._commit = found.sha
        return CacheMap("sha256:" + hashlib.sha256(f"bkpy-git-v1\0{key}".encode()).hexdigest())

    def exec(self, ctx: OpContext, inputs: Sequence[Result]) -> list[Result]:
        if not self._commit:
            self.cache_map(ctx)
        with self.shared.remote_lock(self.ident.remote):
            return [checkout_snapshot(self.worker, self.git(ctx), self.ident, self._commit,
                                      ctx.cancel)]

    def cancel(self) -> None:
        self.processes.cancel()

    # why it ran (solver.worker.ExplainsMisses) -------------------------------------------

    def _summary(self) -> dict[str, Any]:
        found = self._resolved
        return {"kind": "git", "remote": redact(self.ident.remote), "ref": self.ident.ref,
                "commit": (found.commit or found.sha) if found else ""}

    def change_summary(self, ctx: OpContext) -> str:
        return json.dumps(self._summary(), sort_keys=True)

    def describe_change(self, ctx: OpContext, old_summary: str) -> str | None:
        try:
            old = json.loads(old_summary)
        except ValueError:
            return None
        new = self._summary()
        if not isinstance(old, dict) or old.get("kind") != "git" or \
                (old.get("remote"), old.get("ref")) != (new["remote"], new["ref"]):
            return None
        if old.get("commit") == new["commit"]:
            return None
        name = new["ref"] or "the default branch"
        return (f"git {name} of {new['remote']} moved: {str(old.get('commit'))[:12]} -> "
                f"{new['commit'][:12]}")


def git_handler_factory(shared: GitSources) -> HandlerFactory:
    """The worker's factory of Git source handlers sharing ``shared``."""

    def make(worker: OpWorker, op: ops_pb2.Op) -> OpHandler:
        return GitSourceHandler(worker, op, shared)

    return make
