"""FileOp: mkdir / mkfile / rm / symlink / copy actions applied on a new layer."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from buildkit_py import rootpath
from buildkit_py.errors import BuildError
from buildkit_py.executor.user import lookup_group, lookup_user
from buildkit_py.frontend.dockerfile.dockerignore import filepath_match
from buildkit_py.gostrings import go_quote
from buildkit_py.llb import chmod, ops_pb2
from buildkit_py.snapshot import mounted
from buildkit_py.solver.progress import ProgressWriter
from buildkit_py.solver.worker import CacheMap, CacheMapDep, OpContext, Result
from buildkit_py.worker import copy_reuse, fileops, untar
from buildkit_py.worker.checksum import (
    DIGEST_VERSION,
    Checksummer,
    FileDigests,
    UnmemoizedDigests,
)
from buildkit_py.worker.ops.base import OpWorker
from buildkit_py.worker.ops.common import (
    copy_local_into,
    glob,
    memoized_snapshot_digest,
    op_cache_digest,
    scoped_keep,
    unwrap,
)
from buildkit_py.worker.ops.explain import describe_file_change, file_summary
from buildkit_py.worker.ops.source_local import make_keep
from buildkit_py.worker.results import LocalResult, SnapshotResult
from buildkit_py.worker.snapshots import ActiveLayer, new_key

_NS = 1_000_000_000
_LOG_COPIES_FROM = 100  # entries: below that a COPY's time split is not worth a log line


def _seconds(ns: int) -> int | None:
    return None if ns < 0 else ns // _NS


def _selection_spec(specs: dict[str, ops_pb2.FileActionCopy], selectors: Sequence[str]) -> str:
    """Everything besides the tree that a copy content digest depends on: the selectors
    (mixed into the digest) and each copy's source, wildcard, symlink and filter options."""
    h = hashlib.sha256(f"bkpy-copy-selection-v{DIGEST_VERSION}".encode())
    for sel in selectors:
        c = specs[sel]
        fields = [sel, c.src, c.allow_wildcard, c.follow_symlink,
                  list(c.include_patterns), list(c.exclude_patterns)]
        h.update(b"\0" + json.dumps(fields).encode())
    return h.hexdigest()


def _context_not_found(src: SnapshotResult | LocalResult | None, path: str) -> BuildError:
    """A path missing from the build context, in BuildKit's words: it finds out when
    checksumming the context (its ref is named here by the context directory)."""
    name = src.path.name if isinstance(src, LocalResult) else "scratch"
    return BuildError("failed to compute cache key: failed to calculate checksum of ref "
                      f"{name}: {go_quote(path)}: not found",
                      hint="check the path is inside the build context and not excluded by "
                           ".dockerignore")


def _exact(path: str) -> ops_pb2.FileActionCopy:
    """A copy spec naming ``path`` literally (for :meth:`FileHandler._sources`)."""
    return ops_pb2.FileActionCopy(src=path, allow_wildcard=False)


def _check_user_input(u: ops_pb2.UserOpt) -> None:
    # A name is looked up in one of the op's inputs; a copy made in scratch (COPY --link)
    # has none, which BuildKit rejects.
    if u.by_name.input < 0:
        raise BuildError(f"invalid user index: {u.by_name.input}")


def _holds_kept(root: str, path: str, keep: Callable[[str], bool]) -> bool:
    """Whether the excluded directory ``path`` holds a path the context keeps (a
    .dockerignore exception): BuildKit's context then has the directory, with just those."""
    top = rootpath.resolve(root, path, follow_final=False)
    if not os.path.isdir(top) or os.path.islink(top):
        return False
    base = path.strip("/")
    for dirpath, dirnames, filenames in os.walk(top):
        rel = os.path.relpath(dirpath, top)
        prefix = base if rel == "." else f"{base}/{rel}"
        if any(keep(f"{prefix}/{name}") for name in (*dirnames, *filenames)):
            return True
    return False


def _copy_keep(c: ops_pb2.FileActionCopy) -> Callable[[str], bool] | None:
    return make_keep(list(c.include_patterns), list(c.exclude_patterns))


def _try_unpack(src_root: str, src: str, *, root: str, dest: str,
                opts: fileops.CopyOptions) -> bool:
    """ADD's archive auto-extraction: a local tar (any compression) is unpacked."""
    host = rootpath.resolve(src_root, src)
    if not untar.is_archive(host):
        return False
    owner = (opts.owner.uid, opts.owner.gid) if opts.owner else None
    untar.untar(host, root, dest, owner=owner, timestamp=opts.timestamp)
    return True


class FileHandler:
    cache_map_is_cheap = True  # pure hashing: no thread-pool trip for the key

    def __init__(self, worker: OpWorker, op: ops_pb2.Op) -> None:
        self.worker = worker
        self.op = op
        self._checksum_note = ""

    def cancel(self) -> None:
        pass

    # why it ran (solver.worker.ExplainsMisses)
    def change_summary(self, ctx: OpContext) -> str:
        return json.dumps(file_summary(self.op), sort_keys=True)

    def describe_change(self, ctx: OpContext, old_summary: str) -> str | None:
        return describe_file_change(self.op, old_summary)

    # cache ------------------------------------------------------------------

    def cache_map(self, ctx: OpContext) -> CacheMap:
        n = len(self.op.inputs)
        copies: dict[int, list[tuple[str, ops_pb2.FileActionCopy]]] = {}
        for i, a in enumerate(self.op.file.actions):
            if a.WhichOneof("action") == "copy" and 0 <= a.secondary_input < n:
                copies.setdefault(a.secondary_input, []).append((f"{i}:{a.copy.src}", a.copy))
        deps = []
        for index in range(n):
            uses = copies.get(index)
            if not uses:
                deps.append(CacheMapDep())
                continue
            specs = {sel: c for sel, c in uses}
            deps.append(CacheMapDep(tuple(specs), self._content_func(specs)))
        return CacheMap(op_cache_digest(self.op), tuple(deps))

    def _content_func(self, specs: dict[str, ops_pb2.FileActionCopy]
                      ) -> Callable[[Result, Sequence[str]], str]:
        worker = self.worker

        def compute(result: Result, selectors: Sequence[str]) -> str:
            res = unwrap(result)
            if isinstance(res, LocalResult):
                return self._content(res, specs, selectors)
            # A committed snapshot never changes: it is mounted and checksummed once, a
            # no-op rebuild then reads the digest from the memo.
            return memoized_snapshot_digest(
                worker, res, _selection_spec(specs, selectors),
                lambda: self._content(res, specs, selectors))

        return compute

    def _content(self, res: SnapshotResult | LocalResult,
                 specs: dict[str, ops_pb2.FileActionCopy], selectors: Sequence[str]) -> str:
        """The content digest of what the copies select from ``res``, read from a mount."""
        started = time.monotonic()
        local = isinstance(res, LocalResult)
        local_keep = res.keep if isinstance(res, LocalResult) else None
        files: FileDigests = self.worker.checksums if local else UnmemoizedDigests()
        summer = Checksummer(files, zero_owner=local, keep_trees=local)
        h = hashlib.sha256(b"bkpy-copy-content-v1")
        with self.worker.snapshots.read(res) as root:
            for sel in selectors:
                c = specs[sel]
                for m in self._sources(str(root), c, local_keep):
                    digest = summer.selection(
                        str(root), m, follow=c.follow_symlink,
                        keep=scoped_keep(local_keep, m, _copy_keep(c)))
                    h.update(f"\0{sel}\0{m}\0{digest}".encode())
        digest = "sha256:" + h.hexdigest()
        if isinstance(res, LocalResult):
            self.worker.checksums.flush()
            # the per-path map that lets a later miss name the changed files
            slot = f"{res.path}|{_selection_spec(specs, selectors)}"
            self.worker.checksums.remember_manifest(slot, digest, summer.manifest)
        # The time split of a COPY (content key, then copy) is logged by exec: a log
        # line now would reach the display before the vertex has started.
        if summer.files >= _LOG_COPIES_FROM:
            self._checksum_note = (f"checksum: {summer.files} files ({summer.hashed} read)"
                                   f" in {time.monotonic() - started:.2f}s\n")
        return digest

    def _sources(self, root: str, c: ops_pb2.FileActionCopy,
                 local_keep: Callable[[str], bool] | None) -> list[str]:
        """Source paths a copy reads: wildcard matches, minus what the context excludes."""
        if c.allow_wildcard and fileops.has_wildcard(c.src):
            found = glob(root, c.src)
        else:
            found = [rootpath.clean(c.src)]
        if local_keep is None:
            return found
        return [m for m in found if m == "/" or local_keep(m.strip("/"))
                or _holds_kept(root, m, local_keep)]

    # exec -------------------------------------------------------------------

    def exec(self, ctx: OpContext, inputs: Sequence[Result]) -> list[Result]:
        ins = [unwrap(r) for r in inputs]
        if self._reusable(ins):
            return [self._copy_reusing(ctx, ins)]
        n = len(ins)
        actions = list(self.op.file.actions)
        layers: dict[int, ActiveLayer] = {}
        consumed: set[int] = set()
        outputs: dict[int, ActiveLayer] = {}
        with contextlib.ExitStack() as stack:
            for i, a in enumerate(actions):
                if ctx.cancel.cancelled:
                    raise BuildError("cancelled")
                if a.input >= n:
                    j = a.input - n
                    if j not in layers or j in consumed or j in outputs.values():
                        raise BuildError(f"invalid file op: action {i} reads action {j}'s "
                                         "result, which is not available")
                    layer = layers[j]
                    consumed.add(j)
                else:
                    base = ins[a.input] if a.input >= 0 else None
                    if isinstance(base, LocalResult):
                        # A local context as the base (FROM a named context): as in
                        # BuildKit, what it exposes is a layer of its own, below this one.
                        base = self._local_layer(base)
                    layer = stack.enter_context(self.worker.snapshots.write(base))
                layers[i] = layer
                self._apply(stack, a, layer, ins, ctx.progress)
                if a.output >= 0:
                    outputs[a.output] = layer
            for i, layer in layers.items():
                if layer not in outputs.values() and i not in consumed:
                    layer.discard = True
        results: list[Result] = []
        for index in range(len(outputs)):
            layer = outputs[index]
            if layer.result is None:
                raise BuildError(f"invalid file op: output {index} was not produced")
            results.append(layer.result)
        return results

    def _local_layer(self, local: LocalResult) -> SnapshotResult:
        with self.worker.snapshots.write(None) as seed:
            copy_local_into(local, Path(seed.path))
        assert seed.result is not None
        return seed.result

    def _reusable(self, ins: list[SnapshotResult | LocalResult]) -> bool:
        """A lone copy from a local context onto a snapshot: what ``copy_reuse`` handles
        (the checksum memo knows the context's files by their stable paths)."""
        actions = self.op.file.actions
        if len(actions) != 1 or actions[0].WhichOneof("action") != "copy":
            return False
        a = actions[0]
        n = len(ins)
        return (a.output == 0 and -1 <= a.input < n and 0 <= a.secondary_input < n
                and (a.input < 0 or isinstance(ins[a.input], SnapshotResult))
                and isinstance(ins[a.secondary_input], LocalResult))

    def _copy_reusing(self, ctx: OpContext, ins: list[SnapshotResult | LocalResult]
                      ) -> SnapshotResult:
        """The copy on a new layer, linking what the op's last layer already holds."""
        a = self.op.file.actions[0]
        base = ins[a.input] if a.input >= 0 else None
        parent = base.key if isinstance(base, SnapshotResult) else None
        sn = self.worker.sn
        index = copy_reuse.ReuseIndex(self.worker.root / "copy-reuse")
        key = copy_reuse.reuse_key(op_cache_digest(self.op), 0)
        prev = index.previous(key, sn)
        layer = ActiveLayer(new_key("active"), parent)
        with contextlib.ExitStack() as stack:
            old = stack.enter_context(
                copy_reuse.pinned(sn, prev[0] if prev else None, new_key("pin")))
            mounts = sn.prepare(layer.key, parent)  # on failure it leaves no record
            try:
                plan = copy_reuse.LinkPlan(
                    sn.layer_dir(layer.key), self.worker.checksums.lookup,
                    old, prev[1] if prev is not None and old is not None else None)
                with mounted(mounts, self.worker.snapshots.tmp_root) as path:
                    layer.path = path
                    plan.root = str(path)
                    if ctx.cancel.cancelled:
                        raise BuildError("cancelled")
                    self._copy(stack, a, layer, ins, ctx.progress, reuse=plan)
                started = time.monotonic()
                plan.finish()
                if plan.linked:
                    ctx.progress.log(1, f"copy: {plan.linked} unchanged files linked from the "
                                        f"last build in {time.monotonic() - started:.2f}s\n")
                name = new_key("layer")
                sn.commit(name, layer.key)
            except BaseException:
                sn.remove(layer.key)
                raise
        result = SnapshotResult(name, sn.usage(name).size)
        if len(plan.files) >= copy_reuse.MIN_FILES:
            index.record(key, name, plan.files)
        return result

    def _owner(self, opt: ops_pb2.ChownOpt, layer: ActiveLayer) -> fileops.Owner | None:
        """BuildKit's reading of a chown option: a numeric user sets the gid too; a name
        missing from /etc/passwd (or /etc/group) silently leaves 0 (or the gid as is)."""
        if not opt.HasField("user") and not opt.HasField("group"):
            return None
        uid = gid = 0
        if opt.HasField("user"):
            if opt.user.WhichOneof("user") == "by_name":
                _check_user_input(opt.user)
                found = lookup_user(Path(layer.path), opt.user.by_name.name)
                if found is not None:
                    uid, gid = found
            else:
                uid = gid = opt.user.by_id
        if opt.HasField("group"):
            if opt.group.WhichOneof("user") == "by_name":
                _check_user_input(opt.group)
                found_gid = lookup_group(Path(layer.path), opt.group.by_name.name)
                if found_gid is not None:
                    gid = found_gid
            else:
                gid = opt.group.by_id
        return fileops.Owner(uid, gid)

    def _apply(self, stack: contextlib.ExitStack, a: ops_pb2.FileAction, layer: ActiveLayer,
               ins: list[SnapshotResult | LocalResult], progress: ProgressWriter) -> None:
        root = str(layer.path)
        kind = a.WhichOneof("action")
        if kind == "mkdir":
            d = a.mkdir
            fileops.mkdir(root, d.path, d.mode if d.mode >= 0 else 0o755,
                          make_parents=d.make_parents, owner=self._owner(d.owner, layer),
                          timestamp=_seconds(d.timestamp))
        elif kind == "mkfile":
            f = a.mkfile
            fileops.mkfile(root, f.path, f.mode if f.mode >= 0 else 0o644, f.data,
                           owner=self._owner(f.owner, layer), timestamp=_seconds(f.timestamp))
        elif kind == "rm":
            r = a.rm
            fileops.rm(root, r.path, allow_not_found=r.allow_not_found,
                       allow_wildcard=r.allow_wildcard, wildcard_match=filepath_match)
        elif kind == "symlink":
            s = a.symlink
            host = rootpath.resolve(root, s.newpath, follow_final=False)
            if os.path.lexists(host):
                raise BuildError(f"symlink {s.newpath}: file exists")
            os.symlink(s.oldpath, host)
            owner = self._owner(s.owner, layer)
            if owner is not None:
                os.lchown(host, owner.uid, owner.gid)
            ts = _seconds(s.timestamp)
            if ts is not None:
                os.utime(host, ns=(ts * _NS, ts * _NS), follow_symlinks=False)
        elif kind == "copy":
            self._copy(stack, a, layer, ins, progress)
        else:
            raise BuildError(f"invalid file op: unknown action {kind!r}")

    def _copy(self, stack: contextlib.ExitStack, a: ops_pb2.FileAction, layer: ActiveLayer,
              ins: list[SnapshotResult | LocalResult], progress: ProgressWriter,
              reuse: copy_reuse.LinkPlan | None = None) -> None:
        c = a.copy
        n = len(ins)
        if a.secondary_input >= n:
            raise BuildError("invalid file op: copy from an action result is not supported "
                             "by this worker")
        src = ins[a.secondary_input] if a.secondary_input >= 0 else None
        src_root = stack.enter_context(self.worker.snapshots.read(src))
        local_keep = src.keep if isinstance(src, LocalResult) else None
        mode: chmod.ModeFunc | None = None
        dir_mode = 0o755
        if c.mode_str:
            mode = chmod.parse(c.mode_str)
        elif c.mode >= 0:
            fixed = c.mode
            dir_mode = fixed & 0o777  # created dest dirs: no suid/sgid/sticky (as BuildKit)

            def mode(_cur: int, _is_dir: bool) -> int:
                return fixed

        owner = self._owner(c.owner, layer)
        sources = self._sources(str(src_root), c, local_keep)
        if not sources and not (c.allow_wildcard and fileops.has_wildcard(c.src)):
            # BuildKit's wording: a context path is missing when checksumming the context
            # (its ref is named here by the context directory), another input's on copying
            raise _context_not_found(src, c.src)
        if not sources and not c.allow_empty_wildcard:
            raise BuildError(f"no source files were specified matching {c.src!r}")
        for required in c.required_paths:  # COPY --parents of a path without wildcards
            kept = self._sources(str(src_root), _exact(required), local_keep)
            if not kept or not os.path.lexists(rootpath.resolve(str(src_root), required)):
                raise _context_not_found(src, required)
        if self._checksum_note:
            progress.log(1, self._checksum_note)
            self._checksum_note = ""
        stats = fileops.CopyStats()
        started = time.monotonic()
        for m in sources:
            opts = fileops.CopyOptions(
                owner=owner, mode=mode, dir_mode=dir_mode, follow_symlinks=c.follow_symlink,
                dir_copy_contents=c.dir_copy_contents, create_dest_path=c.create_dest_path,
                allow_wildcard=False, allow_empty_wildcard=c.allow_empty_wildcard,
                timestamp=_seconds(c.timestamp),
                keep=scoped_keep(local_keep, m, _copy_keep(c)),
                parents=c.parents,
                always_replace_existing_dest_paths=c.always_replace_existing_dest_paths,
                wildcard_match=filepath_match,
                stats=stats,
                reuse=reuse if len(sources) == 1 else None,
            )
            dest = c.dest  # several matches go to the same dest, as in BuildKit
            if c.attempt_unpack_docker_compatibility and _try_unpack(
                    str(src_root), m, root=str(layer.path), dest=dest, opts=opts):
                continue
            try:
                fileops.copy(str(src_root), m, str(layer.path), dest, opts)
            except fileops.SourceNotFoundError as err:
                if isinstance(src, LocalResult):
                    raise _context_not_found(src, err.path) from err
                raise
        if stats.files >= _LOG_COPIES_FROM:
            progress.log(1, f"copy: {stats.files} files ({stats.bytes / 1e6:.1f} MB) "
                                  f"in {time.monotonic() - started:.2f}s\n")
