"""A builder of several nodes: which node builds which platform, and how their results
become the one result the user asked for.

Each platform is built on a node that runs it natively where possible, the nodes in
parallel. Combining results (what buildx gives): ``type=local`` outputs get one
sub-directory per platform (``linux_amd64/``...) whichever node built it, and
``type=tar`` one folder per platform in one tarball; ``type=image`` without push stores
each node's platforms in that node's image store. Pushes (``--push``, ``type=registry``)
and ``type=oci`` / ``type=docker`` outputs get one image index over all platforms: each
node exports its platforms as an OCI layout to the client, which joins them
(:mod:`buildkit_py.client.node_results`) and pushes the manifests by digest and the
index under every tag, or writes one layout. ``--metadata-file`` holds the index digest
(``containerimage.digest``) when there is one, and one entry per node under
``"nodes"``; ``--iidfile`` the index digest, else the first node's image id.

A ``--cache-to`` becomes one cache with every platform's records
(:mod:`buildkit_py.remotecache.merge`): a registry node pushes its cache manifest by
digest only, a ``type=local`` node writes its cache into the client's directory under a
tag of its own; the client then merges the nodes' configs and writes the result under the
ref or tag asked for (the temporary tags dropped). Inline cache needs nothing: each
platform's image config carries its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildkit_py.api.outcome import BuildOutcome
from buildkit_py.api.outputs import OutputSpec
from buildkit_py.api.request import BuildRequest
from buildkit_py.api.usage import PruneOptions, UsageItem
from buildkit_py.api.workers import WorkerInfo
from buildkit_py.client.base import BuilderClient
from buildkit_py.client.node_results import JoinedImage, join_tars
from buildkit_py.errors import UsageError, UserError
from buildkit_py.imagetools.access import Access
from buildkit_py.imagetools.create import parse_targets
from buildkit_py.platforms import match_rank, parse_platform
from buildkit_py.remotecache.config import CacheFormatError
from buildkit_py.remotecache.merge import (
    PUSHED_KEY,
    merge,
    push_merged,
    pushed,
    read_local,
    read_registry,
    write_merged_local,
)
from buildkit_py.remotecache.spec import CacheExport, export_spec
from buildkit_py.solver.progress import (
    ProgressEvent,
    ProgressSink,
    VertexCompleted,
    VertexFailed,
    VertexStarted,
)


@dataclass
class NodeTarget:
    name: str
    client: BuilderClient
    platforms: list[str]  # configured with --platform (may be empty)


def _rank(node_platform: str, wanted: str) -> int | None:
    try:
        return match_rank(parse_platform(node_platform), parse_platform(wanted))
    except UsageError:
        return None


def _best(wanted: str, candidates: list[list[str]]) -> int | None:
    best: tuple[int, int] | None = None
    for index, plats in enumerate(candidates):
        for p in plats:
            rank = _rank(p, wanted)
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, index)
    return None if best is None else best[1]


def route_platforms(platforms: list[str], nodes: list[NodeTarget],
                    workers: Callable[[int], WorkerInfo | None]) -> dict[int, list[str]]:
    """Which node builds which platform (buildx's rules).

    First every platform against the nodes' configured platforms; if that places them
    all, done. Otherwise ask each node's workers and prefer, in order: a configured
    match, a native one, an emulated one; what nothing matches goes to the first node.
    """
    if not platforms:
        return {0: []}
    groups: dict[int, list[str]] = {}
    configured = [n.platforms for n in nodes]
    strict = {p: _best(p, configured) for p in platforms}
    if all(i is not None for i in strict.values()):
        for p, i in strict.items():
            groups.setdefault(i or 0, []).append(p)
        return groups
    infos = [workers(i) for i in range(len(nodes))]
    native = [[p for p in (w.platforms if w else []) if p not in (w.emulated if w else [])]
              for w in infos]
    emulated = [list(w.emulated) if w else [] for w in infos]
    for p in platforms:
        choice = strict[p]
        if choice is None:
            choice = _best(p, native)
        if choice is None:
            choice = _best(p, emulated)
        groups.setdefault(choice or 0, []).append(p)
    return groups


class MultiNodeClient:
    """A builder with several nodes, one interface (see the module for how results join)."""

    def __init__(self, nodes: list[NodeTarget]) -> None:
        self.nodes = nodes
        self._workers: dict[int, WorkerInfo | None] = {}

    def close(self) -> None:
        for n in self.nodes:
            n.client.close()

    def _worker(self, index: int) -> WorkerInfo | None:
        if index not in self._workers:
            try:
                found = self.nodes[index].client.workers()
            except UserError:
                found = []
            self._workers[index] = found[0] if found else None
        return self._workers[index]

    def workers(self) -> list[WorkerInfo]:
        out: list[WorkerInfo] = []
        for i in range(len(self.nodes)):
            w = self._worker(i)
            if w is not None:
                out.append(w)
        return out

    def disk_usage(self, verify: bool = False) -> list[UsageItem]:
        return [dataclasses.replace(item, id=f"{n.name}/{item.id}")
                for n in self.nodes for item in n.client.disk_usage(verify)]

    def prune(self, opts: PruneOptions) -> Iterator[UsageItem]:
        for n in self.nodes:
            for item in n.client.prune(opts):
                yield dataclasses.replace(item, id=f"{n.name}/{item.id}")

    def build(self, req: BuildRequest, progress: ProgressSink) -> BuildOutcome:
        groups = route_platforms(req.platforms, self.nodes, self._worker)
        if len(groups) == 1 or req.call == "check":  # a check runs once, on the first node
            return self.nodes[next(iter(groups))].client.build(req, progress)
        for o in req.outputs:
            if o.pushes and not o.image_names(req.tags):
                # refuse before building, as a one-node build would after it
                raise UsageError("pushing needs an image name",
                                 hint="add -t NAME or --output type=image,name=NAME,push=true")
        if any(o.leaves_builder for o in req.outputs):
            for o in req.outputs:
                if o.pushes:
                    parse_targets(o.image_names(req.tags))
        return self._build_split(req, groups, progress)

    def _node_request(self, req: BuildRequest, index: int, plats: list[str],
                      tmp: Path, token: str) -> BuildRequest:
        """The part of ``req`` that node ``index`` builds, its outputs redirected to what
        the client joins afterwards, its cache exports to what the client merges."""
        outputs: list[OutputSpec] = []
        layout_asked = False
        for k, o in enumerate(req.outputs):
            attrs = dict(o.attrs)
            if o.leaves_builder:
                if not layout_asked:  # one layout serves every joined output
                    outputs.append(o.as_layout(str(tmp / f"layout-{index}")))
                    layout_asked = True
                continue
            if o.kind.files and len(plats) == 1:
                sub = parse_platform(plats[0]).for_path()
                attrs["dest"] = str(Path(o.dest or ".") / sub)
            elif o.kind.tarball:
                attrs["dest"] = str(tmp / f"tar-{index}-{k}.tar")
            outputs.append(OutputSpec(o.type, attrs))
        cache_to: list[dict[str, str]] = []
        for attrs in req.cache_to:
            attrs = dict(attrs)
            if attrs.get("type") == "registry":
                attrs["push-by-digest"] = "true"
            elif attrs.get("type") == "local":
                attrs["tag"] = _node_tag(attrs, token, index)
            cache_to.append(attrs)
        return dataclasses.replace(
            req, platforms=plats, outputs=outputs, cache_to=cache_to,
            iidfile=tmp / f"{index}.iid" if req.iidfile else None,
            metadata_file=tmp / f"{index}.json" if req.metadata_file else None)

    def _build_split(self, req: BuildRequest, groups: dict[int, list[str]],
                     progress: ProgressSink) -> BuildOutcome:
        results: dict[int, BuildOutcome] = {}
        errors: dict[int, BaseException] = {}
        with tempfile.TemporaryDirectory(prefix="bkpy-nodes-") as tmpdir:
            tmp = Path(tmpdir)
            token = uuid.uuid4().hex[:12]  # this build's temporary cache tags
            requests = {i: self._node_request(req, i, p, tmp, token)
                        for i, p in groups.items()}

            def run(index: int) -> None:
                node = self.nodes[index]
                try:
                    results[index] = node.client.build(requests[index],
                                                       _prefixed(progress, node.name))
                except BaseException as err:
                    errors[index] = err

            threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in groups]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise errors[min(errors)]
            order = list(groups)  # the order the platforms were asked in
            pushed_caches = {i: {PUSHED_KEY: r.metadata.pop(PUSHED_KEY, [])}
                             for i, r in results.items()}
            first = results[min(results)]
            outcome = BuildOutcome(
                image_id=first.image_id,
                metadata={"nodes": [{"name": self.nodes[i].name, "platforms": groups[i],
                                     **results[i].metadata} for i in sorted(results)]},
                ran=sum(r.ran for r in results.values()),
                cached=sum(r.cached for r in results.values()),
                warnings=[w for i in sorted(results) for w in results[i].warnings])
            self._join(req, groups, order, tmp, outcome, progress)
            self._merge_caches(req, order, pushed_caches, token, tmp, outcome, progress)
        if req.iidfile is not None and outcome.image_id:
            req.iidfile.write_text(outcome.image_id)
        if req.metadata_file is not None:
            req.metadata_file.write_text(json.dumps(outcome.metadata, indent=2) + "\n")
        return outcome

    def _join(self, req: BuildRequest, groups: dict[int, list[str]], order: list[int],
              tmp: Path, outcome: BuildOutcome,
              progress: ProgressSink) -> None:
        """Turn the nodes' exports into the outputs the user asked for."""
        joined: JoinedImage | None = None
        if any(o.leaves_builder for o in req.outputs):
            with _step(progress, "merging image manifests of every node into one index"):
                joined = JoinedImage([(self.nodes[i].name, tmp / f"layout-{i}")
                                      for i in order])
            outcome.image_id = joined.digest
            outcome.metadata = {"containerimage.digest": joined.digest,
                                "containerimage.descriptor": joined.descriptor(),
                                **outcome.metadata}
        for k, o in enumerate(req.outputs):
            names = o.image_names(req.tags)
            if joined is not None and o.pushes:
                for name in names:
                    with _step(progress, f"pushing {name} (image index)"):
                        joined.push([name], tmp / "push-store")
                outcome.metadata.setdefault("image.name", ",".join(names))
            elif joined is not None and o.kind.layout:
                with _step(progress, f"exporting to {o.type} image format"):
                    joined.write_layout(o.dest or "-", names,
                                        tar=o.attrs.get("tar", "true") != "false",
                                        docker=o.kind.docker)
            elif o.kind.tarball:
                # a node of one platform sent it unprefixed; one of several, in folders
                parts = [(parse_platform(groups[i][0]).for_path() if len(groups[i]) == 1
                          else "", tmp / f"tar-{i}-{k}.tar") for i in order]
                with _step(progress, "sending tarball"):
                    join_tars(parts, o.dest or "-")

    def _merge_caches(self, req: BuildRequest, order: list[int],
                      pushed_caches: dict[int, dict[str, Any]], token: str, tmp: Path,
                      outcome: BuildOutcome, progress: ProgressSink) -> None:
        """Merge what the nodes exported for each registry or local ``--cache-to`` into
        one cache there (with ``ignore-error=true`` a failure is a warning)."""
        specs = [(k, export_spec(attrs)) for k, attrs in enumerate(req.cache_to)]
        specs = [(k, s) for k, s in specs if s.type in ("registry", "local")]
        if not specs:
            return
        with Access() as access:
            for k, spec in specs:
                try:
                    with _step(progress, f"merging the cache of {len(order)} nodes into "
                                         f"{spec.where}"):
                        if spec.type == "registry":
                            self._merge_registry(spec, order, pushed_caches, access,
                                                 tmp / f"cache-{k}")
                        else:
                            self._merge_local(spec, order, token, tmp / f"cache-{k}")
                except (UserError, OSError) as err:
                    if not spec.ignore_error:
                        raise
                    outcome.warnings.append(f"failed to export cache to {spec.where}: "
                                            f"{err}")

    def _merge_registry(self, spec: CacheExport, order: list[int],
                        pushed_caches: dict[int, dict[str, Any]], access: Access,
                        work: Path) -> None:
        ref = spec.attrs["ref"]
        parts = []
        for i in order:
            desc = pushed(pushed_caches.get(i, {}), ref)
            if desc is None:  # its export failed, with ignore-error=true (a warning)
                continue
            parts.append(read_registry(access.registry, ref, desc.digest))
        if parts:
            push_merged(access.registry, ref, merge(parts), work,
                        image_manifest=spec.image_manifest, oci=spec.oci)

    def _merge_local(self, spec: CacheExport, order: list[int], token: str,
                     work: Path) -> None:
        dest = Path(spec.attrs["dest"])
        tags = [_node_tag(spec.attrs, token, i) for i in order]
        if not (dest / "index.json").is_file():
            return  # no node exported (each failed, with ignore-error=true)
        parts = []
        for tag in tags:
            try:
                parts.append(read_local(dest, tag))
            except CacheFormatError:
                if not spec.ignore_error:
                    raise
        if parts:
            write_merged_local(dest, spec.attrs.get("tag") or "latest", merge(parts), tags,
                               work, image_manifest=spec.image_manifest, oci=spec.oci)


def _node_tag(attrs: dict[str, str], token: str, index: int) -> str:
    """The temporary tag node ``index`` writes its part of a local cache under."""
    return f"{attrs.get('tag') or 'latest'}.bkpy-{token}-node{index}"


_step_counter = iter(range(1, 1 << 30))


@contextlib.contextmanager
def _step(progress: ProgressSink, name: str) -> Iterator[None]:
    """Report a client-side step of a multi-node build as a vertex of its own."""
    digest, started = f"client:{next(_step_counter)}", time.time()
    progress(VertexStarted(digest, name, started))
    try:
        yield
    except BaseException as err:
        progress(VertexFailed(digest, name, started, time.time(), str(err)))
        raise
    progress(VertexCompleted(digest, name, started, time.time()))


def _prefixed(progress: ProgressSink, node: str) -> ProgressSink:
    """Keep vertices of different nodes apart in one display."""

    def emit(ev: ProgressEvent) -> None:
        changes: dict[str, Any] = {"digest": f"{node}:{ev.digest}"}
        name = getattr(ev, "name", None)
        if name:
            changes["name"] = f"[{node}] {name}"
        progress(dataclasses.replace(ev, **changes))

    return emit
