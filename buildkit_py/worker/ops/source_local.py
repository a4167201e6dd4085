"""``local://NAME`` sources: a directory the client lends to the build (the context).

Like BuildKit, the source itself is never reused across builds (its key is unique
per solve); what makes rebuilds cached is that consumers key on the *content*
of the paths they read. The result points at the directory with its
include/exclude filter, so nothing is copied until a COPY actually runs.

Why a consumer missed: its content digest of the context changed, and the per-path maps
its checksum stored (``ChecksumCache.remember_manifest``) name the files
(``describe_output_change``). The source itself runs on every build by design and says
nothing (``miss_reason = None``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from buildkit_py.frontend.dockerfile.dockerignore import IgnoreMatcher
from buildkit_py.llb import ops_pb2
from buildkit_py.solver.worker import CacheMap, OpContext, Result
from buildkit_py.worker.checksum import describe_manifest_change
from buildkit_py.worker.ops.base import OpWorker
from buildkit_py.worker.results import LocalResult
from buildkit_py.worker.transfer_size import (
    MAX_ENTRIES,
    TooManyEntries,
    TransferLedger,
    listing,
    transfer_size,
)


def _patterns(attrs: dict[str, str], key: str) -> list[str]:
    raw = attrs.get(key)
    return list(json.loads(raw)) if raw else []


def make_keep(include: list[str], exclude: list[str]) -> Callable[[str], bool] | None:
    """A predicate on context-relative paths (``a/b``): kept by include, not excluded."""
    inc = IgnoreMatcher(include) if include else None
    exc = IgnoreMatcher(exclude) if exclude else None
    if inc is None and exc is None:
        return None

    def keep(path: str) -> bool:
        if exc is not None and exc.matches(path):
            return False
        return inc is None or inc.matches(path) or inc.may_match_children(path)

    return keep


def _buildx_name(name: str) -> str:
    """The name buildx lends a directory as: bkpy's ``ctx-NAME`` for ``--build-context
    NAME=DIR`` is buildx's ``NAME`` (``_context``/``_dockerfile`` for those two)."""
    if not name.startswith("ctx-"):
        return name
    name = name.removeprefix("ctx-")
    return "_" + name if name in ("context", "dockerfile") else name


class LocalSourceHandler:
    miss_reason = None  # read on every build by design: no "cache miss" line

    def __init__(self, worker: OpWorker, op: ops_pb2.Op) -> None:
        self.worker = worker
        src = op.source
        self.name = src.identifier.removeprefix("local://")
        attrs = dict(src.attrs)
        self.include = _patterns(attrs, "local.includepattern")
        self.exclude = _patterns(attrs, "local.excludepatterns")
        self.keep = make_keep(self.include, self.exclude)
        # what BuildKit would send of the directory (for its byte count): follow paths
        # filter like include patterns; "none" re-sends every file on every build
        self.follow = _patterns(attrs, "local.followpaths")
        self.shared_key = attrs.get("local.sharedkeyhint", self.name)
        self.diff = attrs.get("local.differ", "") != "none"
        self.nonce = uuid.uuid4().hex

    def cache_map(self, ctx: OpContext) -> CacheMap:
        return CacheMap(digest=f"sha256:{'0' * 32}{self.nonce}")

    def exec(self, ctx: OpContext, inputs: Sequence[Result]) -> list[Result]:
        path = self.worker.local_dir(ctx, self.name)
        self._report_transfer(ctx, path)
        return [LocalResult(path, self.keep, self.nonce)]

    def _report_transfer(self, ctx: OpContext, path: Path) -> None:
        """BuildKit's ``transferring NAME:`` status, with its byte count."""
        started = time.time()
        try:
            entries = listing(path, self.include + self.follow, self.exclude,
                              limit=MAX_ENTRIES)
        except TooManyEntries:
            return  # a large context: no figure rather than a slower build
        previous = None
        if self.diff:
            previous = TransferLedger(self.worker.root / "transfers").exchange(
                path, self.shared_key, entries)
        # only the end: buildx's printers never show the start of so short a transfer
        ctx.progress.status(f"transferring {_buildx_name(self.name)}:",
                            transfer_size(entries, previous),
                            name="transferring", completed=True, started=started)

    def cancel(self) -> None:
        pass

    def describe_output_change(self, old: str, new: str) -> str | None:
        """Which context files differ between two content digests a consumer took of
        this context (no names when either map is no longer stored)."""
        before = self.worker.checksums.manifest(old)
        after = self.worker.checksums.manifest(new) if before is not None else None
        if before is None or after is None:
            return "context files changed"
        return describe_manifest_change(before, after) or "context file metadata changed"
