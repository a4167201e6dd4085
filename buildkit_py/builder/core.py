"""The builder core: frontend, solver, worker and exporters behind one ``build`` call.

The embedded client runs one in the ``bkpy`` process (holding the state directory's
lock); ``bkpyd`` runs one for its lifetime and serves every client's builds with it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buildkit_py.api.outcome import BuildOutcome
from buildkit_py.api.request import BuildRequest
from buildkit_py.builder.entitlements import DeviceGrant, check_granted, check_llb
from buildkit_py.builder.lint_report import check_outcome, report_lint
from buildkit_py.builder.worker_info import default_platform
from buildkit_py.config import BuilderConfig
from buildkit_py.content.images import ImageStore
from buildkit_py.content.store import ContentStore
from buildkit_py.errors import BuildError, SolveError, UsageError, UserError
from buildkit_py.executor.cdi import CDIRegistry
from buildkit_py.exporter.layers import LayerCache
from buildkit_py.frontend.dockerfile.dockerignore import find_ignore_file, read_ignore_file
from buildkit_py.llb import ops_pb2
from buildkit_py.llb.cachemounts import portable_cache_ids
from buildkit_py.platforms import parse_platform
from buildkit_py.solver.cache import CacheManager
from buildkit_py.solver.cancel import Cancelled, CancelToken
from buildkit_py.solver.explain import miss_metadata
from buildkit_py.solver.progress import (
    ProgressBus,
    ProgressSink,
    ProgressWriter,
    VertexCompleted,
    VertexFailed,
    VertexStarted,
)
from buildkit_py.solver.solver import Solver
from buildkit_py.solver.worker import OpHandler
from buildkit_py.source.image import (
    IMAGE_SCHEMES,
    BuildResolver,
    ImageSourceHandler,
    ImageSources,
)
from buildkit_py.source.schemes import GIT_SCHEMES, HTTP_SCHEMES
from buildkit_py.worker.ops.base import HandlerFactory, OpWorker
from buildkit_py.worker.ops.common import unwrap
from buildkit_py.worker.results import SnapshotResult
from buildkit_py.worker.session import BuildSession
from buildkit_py.worker.transfer_size import dockerfile_size, listing, transfer_size
from buildkit_py.worker.worker import BuilderWorker

if TYPE_CHECKING:
    from buildkit_py.builder.remote_context import RemoteContext
    from buildkit_py.exporter.base import Exporter, PlatformResult
    from buildkit_py.remotecache.importer import ImportedCache
    from buildkit_py.remotecache.spec import CacheExport, CacheImport
    from buildkit_py.source.http import HttpSources


def _source_date_epoch(req: BuildRequest) -> int | None:
    raw = req.build_args.get("SOURCE_DATE_EPOCH") or os.environ.get("SOURCE_DATE_EPOCH")
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise UsageError(f"SOURCE_DATE_EPOCH={raw!r} is not a number of seconds") from None


class Builder:
    """A long-lived builder: one worker, solver and cache shared by every build it runs,
    so concurrent builds share identical steps. ``build`` is thread-safe."""

    def __init__(self, config: BuilderConfig) -> None:
        self.config = config
        self.root = config.root
        self.root.mkdir(parents=True, exist_ok=True)
        self.store = ContentStore(self.root / "content")
        self.images = ImageStore(self.root / "images", self.store)
        self.layer_cache = LayerCache(self.root / "exporter" / "layers.db")
        self._registry: Any = None
        self._registry_lock = threading.Lock()
        self.sources = ImageSources(self.store, self.images, self.layer_cache,
                                    lambda: self.registry)
        self.worker = BuilderWorker(
            self.root / "worker", runtime=config.oci_runtime,
            cdi=None if config.cdi.disabled else CDIRegistry(config.cdi.spec_dirs,
                                                             config.cdi.auto_allowed),
            sources=self._source_handlers())
        self.cache = CacheManager(self.root / "solver")
        self.solver = Solver(self.worker, self.cache, config.max_parallelism)

    def _source_handlers(self) -> dict[str, HandlerFactory]:
        """LLB source schemes the worker routes to handlers made here (``local://`` is the
        worker's own)."""
        sources = self.sources

        def image(w: OpWorker, op: ops_pb2.Op) -> OpHandler:
            return ImageSourceHandler(w, op, sources)

        handlers: dict[str, HandlerFactory] = dict.fromkeys(IMAGE_SCHEMES, image)
        self.http_sources: HttpSources | None = None
        handlers.update(dict.fromkeys(HTTP_SCHEMES, _made_on_first_use(self._http)))
        handlers.update(dict.fromkeys(GIT_SCHEMES, _made_on_first_use(_git)))
        return handlers

    def _http(self) -> HandlerFactory:
        # reason: HTTP(S) and Git sources (~5 ms of imports) load on a build's first one
        from buildkit_py.source.http import HttpSources, http_handler_factory

        self.http_sources = HttpSources(self.root / "worker" / "http.db", self.config.http.ca)
        return http_handler_factory(self.http_sources)

    def close(self) -> None:
        self.solver.close()
        self.cache.close()
        self.worker.close()
        if self.http_sources is not None:
            self.http_sources.close()
        self.images.close()
        self.layer_cache.close()
        if self._registry is not None:
            self._registry.close()
        self.store.close()

    def __enter__(self) -> Builder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def registry(self) -> Any:
        """The registry client, created on first use (httpx is slow to import)."""
        with self._registry_lock:
            if self._registry is None:
                self._registry = self._registry_client()
            return self._registry

    def _registry_client(self) -> Any:
        # reason: the registry client imports httpx (~70 ms): only pulls and pushes need it
        from buildkit_py.registry import RegistryClient, RegistryHostConfig

        hosts = {h: RegistryHostConfig(http=c.http or None, insecure=c.insecure,
                                       ca=tuple(c.ca), mirrors=tuple(c.mirrors),
                                       keypairs=tuple(c.keypairs))
                 for h, c in self.config.registries.items()}
        return RegistryClient(hosts)

    def session_for(self, req: BuildRequest) -> BuildSession:
        """The client-side resources of a request as a session (the embedded case)."""
        # reason: the frontend's URL grammar is for builds only (see build())
        from buildkit_py.frontend.dockerfile.convert.remote_context import names_directory

        local_dirs: dict[str, Path] = {}
        if req.context is not None:
            local_dirs["context"] = req.context.absolute()
        else:
            empty = self.root / "empty-context"
            empty.mkdir(parents=True, exist_ok=True)
            local_dirs["context"] = empty
        for cname, value in req.build_contexts.items():
            if names_directory(value):
                path = Path(value)
                if not path.is_dir():
                    raise UsageError(f"--build-context {cname}={value}: not a directory")
                local_dirs[f"ctx-{cname}"] = path.absolute()
        return BuildSession(local_dirs=local_dirs,
                            secrets={s.id: s.read() for s in req.secrets},
                            ssh_sockets={s.id: Path(s.paths[0]) for s in req.ssh})

    def build(self, req: BuildRequest, progress: ProgressSink,
              session: BuildSession | None = None,
              cancel: CancelToken | None = None) -> BuildOutcome:
        """Run one build. ``cancel`` stops it (e.g. its client went away); steps shared
        with other builds keep running for them."""
        # reason: the Dockerfile frontend and the exporters (~50 ms) are for builds only,
        # not for du, prune or image import, which open a Builder too
        from buildkit_py.exporter.base import PlatformResult
        from buildkit_py.exporter.kinds import exporters_for
        from buildkit_py.frontend.dockerfile import load_dockerfile
        from buildkit_py.frontend.dockerfile.convert import ConvertOptions, convert, make_linter
        from buildkit_py.frontend.dockerfile.convert.remote_context import names_directory

        exporters = exporters_for(req.outputs)
        cache_to = _cache_exports(req)
        cache_from = _cache_imports(req)
        session = session or self.session_for(req)
        session.device_aliases = DeviceGrant.of(req.entitlements).aliases
        build_id = uuid.uuid4().hex  # keeps this build's local sources its own
        name = req.dockerfile_name
        bus = ProgressBus()
        if req.context_url is not None:  # its fetch is solved more than once: show it once
            # reason: as the frontend above: remote contexts are for builds only
            from buildkit_py.builder.remote_context import shown_once

            progress = shown_once(progress)
        sub = bus.subscribe(progress)
        try:
            with _solving():
                remote = None
                if req.context_url is not None:  # fetched here; its Dockerfile read from it
                    remote = self._remote_context(req, bus, session, cancel)
                definition_vertex = ""  # where lint warnings show in the progress
                if remote is not None and req.dockerfile_in_context is not None:
                    name = remote.filename
                    dockerfile_data = remote.dockerfile
                    if req.call != "check":
                        df = load_dockerfile(dockerfile_data, name)
                else:
                    dockerfile_data = req.dockerfile_data
                    with _digest_vertex(bus, f"[internal] load build definition from {name}") \
                            as definition_vertex:
                        _transferred(bus, definition_vertex, "dockerfile", time.time(),
                                     req.dockerfile_sent if req.dockerfile_sent is not None
                                     else dockerfile_size(req.dockerfile, dockerfile_data))
                        if req.call != "check":  # the check reports a broken file itself
                            df = load_dockerfile(dockerfile_data, name)
                ignore: list[str] = []
                if req.context is not None:
                    with _digest_vertex(bus, "[internal] load .dockerignore") as vertex:
                        _transferred(bus, vertex, "context", time.time(), transfer_size(
                            listing(req.context, [".dockerignore"])))
                        ignore_file = find_ignore_file(req.context, req.dockerfile)
                        if ignore_file is not None:
                            ignore = read_ignore_file(ignore_file)
                # buildkitd's default and build platform: its worker's first platform
                worker_default = parse_platform(default_platform(self.config))
                platforms = [parse_platform(p) for p in req.platforms] or [worker_default]
                epoch = _source_date_epoch(req)
                contexts = {cname: f"local:ctx-{cname}" if names_directory(value) else value
                            for cname, value in req.build_contexts.items()}
                # As BuildKit's frontend, a local named context is filtered by its own
                # .dockerignore (never by the main context's), read from the session's
                # copy of it (the client's directory, or what a remote client sent).
                context_ignores = {
                    name: read_ignore_file(path / ".dockerignore")
                    for name, path in session.local_dirs.items()
                    if name.startswith("ctx-") and (path / ".dockerignore").is_file()}
                resolver = BuildResolver(self.sources, pull=req.pull,
                                         report=lambda text: _vertex(bus, text))
                converted = []
                for index, plat in enumerate(platforms):
                    opts = ConvertOptions(
                        target=req.target, target_platform=plat, build_platform=worker_default,
                        build_args=dict(req.build_args),
                        labels=dict(req.labels), build_contexts=contexts, no_cache=req.no_cache,
                        no_cache_filter=list(req.no_cache_filter), network=req.network,
                        extra_hosts=list(req.extra_hosts), shm_size=req.shm_size,
                        ulimits=list(req.ulimits),
                        ignore_patterns=ignore, context_ignores=context_ignores,
                        main_context=remote.context if remote is not None else None,
                        source_date_epoch=epoch, image_resolver=resolver,
                        dockerfile_name=name, multi_platform=len(platforms) > 1,
                        session_id=build_id, lint_report=index == 0)
                    if req.call == "check":
                        checked = check_outcome(bytes(dockerfile_data), opts)
                        if req.metadata_file is not None:
                            req.metadata_file.write_text(
                                json.dumps(checked.metadata, indent=2) + "\n")
                        return checked
                    lint = make_linter(df, opts)
                    try:
                        converted.append(convert(df, opts, lint))
                    except BaseException:  # e.g. error=true: show what was found first
                        report_lint(lint.warnings, bus, definition_vertex, name,
                                    bytes(dockerfile_data), BuildOutcome(), metadata=False)
                        raise
        except BaseException:
            if req.call != "check":
                sub.close()
                bus.close()
            raise
        finally:
            if req.call == "check":  # nothing else to do: the check's result is returned
                sub.close()
                bus.close()

        outcome = BuildOutcome()
        for c in converted:
            report_lint(c.lint, bus, definition_vertex, name, bytes(dockerfile_data), outcome,
                        metadata=req.metadata_warnings)
            for w in c.warnings:
                # buildx's short form; each platform's conversion finds the same ones
                text = f"{w.rule}: {w.message}" + (
                    f" (line {w.location.start_line})" if w.location else "")
                if text not in outcome.warnings:
                    outcome.warnings.append(text)
        try:
            with _solving():
                check_granted(req.entitlements, self.config.insecure_entitlements)
                for c in converted:
                    check_llb(c.definition, req.entitlements, self.worker.cdi)
                imports = self._open_imports(cache_from, converted, bus, session, outcome)
                mount_ids = [i for c in converted for i in portable_cache_ids(c.definition)]
                for imp in imports:
                    imp.fill_cache_mounts(mount_ids, self.worker.cache_mounts,
                                          lambda text: _vertex(bus, text))
                # Nothing reads the results when there is no output, image metadata or
                # cache export: an imported head then stays in the import.
                need = bool(exporters or cache_to or req.iidfile or req.metadata_file
                            or req.debug_on == "always")
                results = self._solve_all(converted, bus, req, session, cancel, imports,
                                          need)
            for r in results:
                outcome.ran += len(r.ran)
                outcome.cached += len(r.cached)
            try:
                plat_results = [PlatformResult(c.platform, c.image_config, _snapshot_key(r),
                                               c.base_image)
                                for c, r in zip(converted, results, strict=True)]
                outcome.metadata.update(miss_metadata(results))  # bkpy.cache.misses
                if any(spec.type == "inline" for spec in cache_to):
                    plat_results = self._with_inline_cache(plat_results, results)
                self._export(req, exporters, plat_results, bus, epoch, outcome)
                if session.debug_shell and req.debug_on == "always":
                    # reason: the step debugger's result shell is for `--invoke` only
                    from buildkit_py.builder.debug_result import open_on_result

                    open_on_result(self.worker, results[0].ref, plat_results[0], session)
                for spec in cache_to:
                    if spec.type != "inline":
                        self._export_cache(spec, results, plat_results, bus, outcome,
                                           mount_ids)
            finally:
                for r in results:
                    r.release()
        finally:
            sub.close()
            bus.close()
        return outcome

    def _remote_context(self, req: BuildRequest, bus: ProgressBus, session: BuildSession,
                        cancel: CancelToken | None) -> RemoteContext:
        """Fetch ``req``'s remote context through the solver and read its Dockerfile, as
        BuildKit's frontend does before converting."""
        # reason: as the frontend in build(): remote contexts are for builds only
        from buildkit_py.builder.remote_context import load_remote_context, read_in_root

        assert req.context_url is not None

        def read(state: Any, path: str, limit: int | None) -> bytes | None:
            result = self.solver.solve(state.marshal(), progress=bus, session=session,
                                       cancel=cancel)
            try:
                if result.ref is None:
                    return None
                with self.worker.snapshots.read(unwrap(result.ref)) as root:
                    return read_in_root(root, path, limit)
            finally:
                result.release()

        keep = req.build_args.get("BUILDKIT_CONTEXT_KEEP_GIT_DIR", "")
        return load_remote_context(req.context_url, req.dockerfile_in_context, read,
                                   keep_git_dir=keep.lower() in ("1", "true"))

    def _solve_all(self, converted: list[Any], bus: ProgressBus, req: BuildRequest,
                   session: BuildSession, cancel: CancelToken | None,
                   imports: list[Any], need_head: bool) -> list[Any]:
        def solve(c: Any) -> Any:
            return self.solver.solve(c.definition, progress=bus, no_cache=req.no_cache,
                                     session=session, cancel=cancel, imports=imports,
                                     need_head=need_head)

        if len(converted) == 1:
            return [solve(converted[0])]
        with ThreadPoolExecutor(max_workers=len(converted)) as pool:
            futures = [pool.submit(solve, c) for c in converted]
            return [f.result() for f in futures]

    # cache import and export --------------------------------------------------

    def _open_imports(self, cache_from: list[CacheImport], converted: list[Any],
                      bus: ProgressBus, session: BuildSession, outcome: BuildOutcome
                      ) -> list[ImportedCache]:
        """The ``--cache-from`` caches, each read once (none: nothing to open)."""
        if not cache_from:
            return []
        # reason: cache import (~10 ms with the wire protos) only for --cache-from
        from buildkit_py.remotecache.importer import open_imports

        return open_imports(
            cache_from, registry=lambda: self.registry, sources=self.sources,
            sn=self.worker.sn, platforms=[str(c.platform) for c in converted],
            step=lambda text: _vertex(bus, text), warn=outcome.warnings.append,
            lent=session.lent_files)

    def _chain(self, key: str) -> list[str]:
        return self.worker.snapshots.chain(SnapshotResult(key))

    def _with_inline_cache(self, plat_results: list[PlatformResult],
                           results: list[Any]) -> list[PlatformResult]:
        """Each platform's image config with its inline cache (``--cache-to type=inline``)."""
        # reason: as _cache_exports: cache export only for --cache-to
        from buildkit_py.remotecache.config import INLINE_KEY
        from buildkit_py.remotecache.export import inline_values

        values = inline_values(results, [p.snapshot_key for p in plat_results], self.cache,
                               self._chain)
        return [dataclasses.replace(p, config={**p.config, INLINE_KEY: v})
                for p, v in zip(plat_results, values, strict=True)]

    def _export_cache(self, spec: CacheExport, results: list[Any],
                      plat_results: list[PlatformResult], bus: ProgressBus,
                      outcome: BuildOutcome, mount_ids: list[str]) -> None:
        """One ``--cache-to`` (every platform's records in one cache, and with
        ``cache-mounts=true`` the build's cache mounts); with ``ignore-error=true`` a
        failure is a warning. A manifest pushed by digest (a node of a multi-node build)
        is named in the metadata, for the client that merges the nodes' caches."""
        # reason: as _cache_exports: cache export only for --cache-to
        from buildkit_py.remotecache.export import collect, export_cache
        from buildkit_py.remotecache.merge import PUSHED_KEY
        from buildkit_py.remotecache.mounts import export_mounts

        try:
            entries = collect(results, [p.snapshot_key for p in plat_results], self.cache,
                              self._chain, spec.mode)
            desc = export_cache(spec, entries, cache=self.cache, sn=self.worker.sn,
                         store=self.store, layer_cache=self.layer_cache,
                         registry=lambda: self.registry, step=lambda text: _vertex(bus, text),
                         mount_blobs=lambda opts: export_mounts(
                             list(dict.fromkeys(mount_ids)), self.worker.cache_mounts,
                             self.store, opts))
            if spec.type == "registry" and spec.by_digest:
                outcome.metadata.setdefault(PUSHED_KEY, []).append(
                    {"ref": spec.attrs["ref"], "descriptor": desc.to_json()})
        except (UserError, OSError) as err:
            if not spec.ignore_error:
                raise
            outcome.warnings.append(f"failed to export cache to {spec.where}: "
                                    f"{_with_hint(err)}")

    # exports ------------------------------------------------------------------

    def _export(self, req: BuildRequest, exporters: list[Exporter],
                results: list[PlatformResult], bus: ProgressBus, epoch: int | None,
                outcome: BuildOutcome) -> None:
        """Make the build's images once (when an output or the metadata needs one), then
        hand the results to each exporter: image outputs first, then the files."""
        # reason: as in build(): the exporters are for builds only, not du, prune or import
        from buildkit_py.exporter.base import Built, ExportEnv, image_names

        env = ExportEnv(
            content=self.store, image_store=self.images, layer_cache=self.layer_cache,
            snapshotter=self.worker.sn,
            chain=lambda key: self.worker.snapshots.chain(SnapshotResult(key)),
            mount=lambda key: self.worker.snapshots.read(SnapshotResult(key)),
            registry=lambda: self.registry, step=lambda text: _writer_vertex(bus, text))
        image_specs = [e.spec for e in exporters if e.makes_image]
        names = image_names(req.outputs, req.tags)
        images = None
        if image_specs or req.iidfile is not None or req.metadata_file is not None:
            # reason: making images (~2 ms with the layouts) only for a build that has some
            from buildkit_py.exporter.image_sets import make_build_images

            images = make_build_images(image_specs, results, epoch, env, names)
        built = Built(results, names, epoch, images)
        if images is not None:
            # reason: as make_build_images above
            from buildkit_py.exporter.oci_layout import normalized_names

            outcome.image_id = images.main.image_id
            # a layout's names are BuildKit's normalized ones, also in its metadata
            layout = bool(image_specs) and image_specs[0].type in ("oci", "docker")
            outcome.metadata = {**images.metadata(normalized_names(names) if layout
                                                  else names), **outcome.metadata}
        for e in [*(e for e in exporters if e.makes_image),
                  *(e for e in exporters if not e.makes_image)]:
            e.export(built, env)
        if req.iidfile is not None and outcome.image_id:
            req.iidfile.write_text(outcome.image_id)
        if req.metadata_file is not None:
            req.metadata_file.write_text(json.dumps(outcome.metadata, indent=2) + "\n")


def _git() -> HandlerFactory:
    # reason: as Builder._http
    from buildkit_py.source.git import GitSources, git_handler_factory

    return git_handler_factory(GitSources())


def _made_on_first_use(make: Callable[[], HandlerFactory]) -> HandlerFactory:
    """A handler factory that is ``make()``'s, made once, when the first op needs it."""
    lock = threading.Lock()
    made: list[HandlerFactory] = []

    def factory(w: OpWorker, op: ops_pb2.Op) -> OpHandler:
        with lock:
            if not made:
                made.append(make())
        return made[0](w, op)

    return factory


def _cache_exports(req: BuildRequest) -> list[CacheExport]:
    """The build's ``--cache-to`` specs (checked again: the daemon trusts no client);
    ``--build-arg BUILDKIT_INLINE_CACHE=1`` asks for inline cache, as with BuildKit."""
    inline = req.build_args.get("BUILDKIT_INLINE_CACHE", "").lower() in ("1", "true")
    if not req.cache_to and not inline:
        return []
    # reason: the cache export and import code (~15 ms) loads only for builds that use it
    from buildkit_py.remotecache.spec import export_spec

    specs = [export_spec(attrs) for attrs in req.cache_to]
    if inline and not any(s.type == "inline" for s in specs):
        specs.append(export_spec({"type": "inline"}))
    return specs


def _cache_imports(req: BuildRequest) -> list[CacheImport]:
    """The build's ``--cache-from`` specs, checked again as :func:`_cache_exports`."""
    if not req.cache_from:
        return []
    # reason: as _cache_exports
    from buildkit_py.remotecache.spec import import_spec

    return [import_spec(attrs) for attrs in req.cache_from]


def _with_hint(err: Exception) -> str:
    """An error as one warning line, with what to do about it (say, to log in)."""
    if not isinstance(err, UserError):
        return str(err)
    return f"{err.message} ({err.hint})" if err.hint else err.message


def _snapshot_key(result: Any) -> str | None:
    if result.ref is None:
        return None
    inner = unwrap(result.ref)
    if not isinstance(inner, SnapshotResult):
        raise BuildError("the build result is a local source, not a filesystem snapshot",
                         hint="add at least one instruction that produces a layer")
    return inner.key


_export_counter = iter(range(1, 1 << 30))
_counter_lock = threading.Lock()


@contextlib.contextmanager
def _vertex(bus: ProgressBus, name: str) -> Iterator[None]:
    """Report an export step as a pseudo-vertex, as BuildKit does."""
    with _digest_vertex(bus, name):
        yield


def _transferred(bus: ProgressBus, digest: str, local: str, started: float, size: int
                 ) -> None:
    """BuildKit's status of a client directory's transfer (``transferring context: 2B``),
    with the bytes BuildKit would have received (bkpy reads the files in place). Only
    the finished status: buildx's printers never show the start of so short a transfer."""
    ProgressWriter(digest, "", bus.publish).status(
        f"transferring {local}:", size, name="transferring", completed=True, started=started)


@contextlib.contextmanager
def _writer_vertex(bus: ProgressBus, name: str) -> Iterator[ProgressWriter]:
    """:func:`_vertex` with a writer for the step's sub-progress (bytes pushed)."""
    with _digest_vertex(bus, name) as digest:
        yield ProgressWriter(digest, name, bus.publish)


@contextlib.contextmanager
def _digest_vertex(bus: ProgressBus, name: str) -> Iterator[str]:
    """:func:`_vertex` that yields the vertex's digest (to attach warnings to it)."""
    with _counter_lock:
        digest = f"export:{next(_export_counter)}"
    started = time.time()
    bus.publish(VertexStarted(digest, name, started))
    try:
        yield digest
    except BaseException as err:
        bus.publish(VertexFailed(digest, name, started, time.time(), str(err)))
        raise
    bus.publish(VertexCompleted(digest, name, started, time.time()))


@contextlib.contextmanager
def _solving() -> Iterator[None]:
    """Word errors of the frontend and the solver as BuildKit does (``failed to solve: ...``,
    a build failure); usage errors and cancellations pass unchanged."""
    try:
        yield
    except (UsageError, SolveError, Cancelled):
        raise
    except UserError as err:
        raise SolveError(err) from err
