"""``convert()``: a parsed Dockerfile -> the target stage's LLB and image config.

Order of work (as BuildKit's dockerfile2llb): expand the FROM lines with the global
ARGs, build the stage graph, pick the target, resolve the base images of the stages
the target needs (only those), add ONBUILD triggers (which may add dependencies, so
repeat), then dispatch each needed stage's instructions in Dockerfile order.
"""

from __future__ import annotations

from buildkit_py import llb
from buildkit_py.errors import DockerfileError, UsageError, UserError
from buildkit_py.frontend.dockerfile.buildargs import BuildArgs, is_proxy_arg
from buildkit_py.frontend.dockerfile.convert.base_images import named_context, resolve_stage
from buildkit_py.frontend.dockerfile.convert.context import MainContext
from buildkit_py.frontend.dockerfile.convert.dispatch import STEP_TYPES, dispatch
from buildkit_py.frontend.dockerfile.convert.dispatch_context import ConvertContext
from buildkit_py.frontend.dockerfile.convert.dispatch_meta import normalize_workdir
from buildkit_py.frontend.dockerfile.convert.errors import located
from buildkit_py.frontend.dockerfile.convert.lint_checks import (
    from_args,
    from_platform,
    invalid_default_base,
)
from buildkit_py.frontend.dockerfile.convert.onbuild import parse_trigger
from buildkit_py.frontend.dockerfile.convert.options import (
    ConvertOptions,
    ConvertResult,
    ConvertWarning,
)
from buildkit_py.frontend.dockerfile.convert.stage_state import StageState
from buildkit_py.frontend.dockerfile.convert.stages import StageGraph, check_cycles, reachable
from buildkit_py.frontend.dockerfile.instructions.model import Dockerfile, Onbuild, Stage
from buildkit_py.frontend.dockerfile.lint import (
    CheckOptionError,
    Linter,
    linter_for,
    run_static_checks,
)
from buildkit_py.frontend.dockerfile.shell_lex import ShellLex
from buildkit_py.frontend.dockerfile.suggest import suggest
from buildkit_py.frontend.dockerfile.syntax import frontend_of
from buildkit_py.gostrings import go_quote
from buildkit_py.llb import ops_pb2
from buildkit_py.platforms import Platform, host_platform, parse_platform


def _pb_platform(p: Platform) -> ops_pb2.Platform:
    return ops_pb2.Platform(os=p.os, architecture=p.architecture, variant=p.variant,
                            os_version=p.os_version)


def _source_file(dockerfile: Dockerfile, filename: str) -> llb.SourceFile:
    return llb.SourceFile(filename, bytes(dockerfile.source))


def _proxy_env(build_args: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key in sorted(build_args):
        if is_proxy_arg(key):
            out[key.lower()] = build_args[key]
    return out


def make_linter(dockerfile: Dockerfile, opts: ConvertOptions) -> Linter:
    """The build's linter (``BUILDKIT_DOCKERFILE_CHECK`` or ``# check=``); a malformed
    value fails the build, as in BuildKit."""
    directive = dockerfile.parse.directive("check")
    try:
        return linter_for(directive.value if directive else None, opts.build_args,
                          report=opts.lint_report)
    except CheckOptionError as err:
        raise DockerfileError(str(err)) from None


def convert(dockerfile: Dockerfile, opts: ConvertOptions,
            linter: Linter | None = None) -> ConvertResult:
    """Compile ``dockerfile`` (from ``load_dockerfile``) for one target platform.

    ``linter`` collects BuildKit's lint findings (a caller that wants them even when
    conversion fails passes its own); by default one is made from the Dockerfile.
    """
    lint = linter if linter is not None else make_linter(dockerfile, opts)
    stages = list(dockerfile.stages)
    if not stages:
        raise DockerfileError("dockerfile contains no stages to build")
    run_static_checks(dockerfile, lint)
    target_platform = opts.target_platform or host_platform()
    build_platform = opts.build_platform or host_platform()
    lex = ShellLex(dockerfile.escape or "\\")

    target_name = opts.target or (stages[-1].name or "")
    build_args = BuildArgs(opts.build_args, target_platform=target_platform,
                           build_platform=build_platform,
                           target_stage=(target_name or "default").lower())
    builtin = build_args.builtin_options()
    invalid_default_base(dockerfile, lex, build_args, lint)
    meta = build_args.meta_scope()
    for arg in dockerfile.meta_args:
        with located(arg.location):
            for a in arg.args:
                meta.declare(a.key, a.value, expand=lex.process_word)

    epoch = opts.source_date_epoch
    if epoch is None:
        epoch = builtin.source_date_epoch
        if epoch is None:
            meta_epoch = meta.get("SOURCE_DATE_EPOCH")
            if meta_epoch and meta_epoch.isdigit():
                epoch = int(meta_epoch)
    cx = ConvertContext(
        opts=opts,
        lex=lex,
        source=_source_file(dockerfile, opts.dockerfile_name),
        target_platform=target_platform,
        build_platform=build_platform,
        build_args=build_args,
        meta=meta,
        main_context=MainContext(opts.context_name, opts.ignore_patterns, opts.session_id,
                                 opts.main_context),
        epoch=epoch,
        proxy_env=_proxy_env(opts.build_args),
        cache_ns=builtin.cache_mount_ns,
        hostname=opts.build_args.get("BUILDKIT_SANDBOX_HOSTNAME", ""),
        labs=frontend_of(dockerfile, opts.build_args).labs,
        lint=lint,
    )

    graph = _build_graph(stages, cx)
    target = _pick_target(graph, opts.target)
    check_cycles(graph.states)
    if len([s for s in graph.states if not s.implicit]) == 1:
        graph.states[0].namer.stage_name = ""

    def wanted() -> set[StageState]:
        # for lint without a target: every stage (BuildKit's AllStages)
        return set(graph.states) if opts.all_stages else reachable(target)

    while True:
        needed = wanted()
        for ds in list(graph.states):
            if ds in needed and ds.base is None and not ds.resolved:
                with located(ds.location):
                    resolve_stage(ds, cx)
        if not _init_onbuild(graph, needed, cx):
            break
        check_cycles(graph.states)  # triggers' --from may have closed a cycle
    needed = wanted()

    for ds in graph.states:
        if ds not in needed or ds.dispatched:
            continue
        _dispatch_stage(ds, cx)
    cx.main_context.finish()
    failure = lint.error()
    if failure is not None:  # `# check=error=true` and a rule fired
        raise DockerfileError(failure)

    assert target.image is not None
    image = target.image
    if opts.labels:
        image.set_labels(dict(opts.labels))
    if opts.target_platform is not None:
        image.set_platform(target_platform)
    unused = build_args.unconsumed()
    if unused:
        cx.warnings.append(ConvertWarning(
            "UnconsumedBuildArgs",
            f"one or more build-args [{' '.join(unused)}] were not consumed"))
    definition = target.state.marshal(platform=_pb_platform(target_platform))
    return ConvertResult(
        definition=definition,
        image_config=image.to_json(),
        platform=target_platform,
        stage_name=target.name or None,
        warnings=cx.warnings,
        lint=list(lint.warnings),
        base_image=image.base,
    )


def _build_graph(stages: list[Stage], cx: ConvertContext) -> StageGraph:
    graph = StageGraph()
    meta_env = cx.meta.env()
    no_cache_filter = {n.lower() for n in cx.opts.no_cache_filter}
    multi = cx.opts.multi_platform
    declared = cx.meta.declared
    for i, st in enumerate(stages):
        lint = cx.lint.with_comments(st.from_.comments)
        from_args(str(st.base), meta_env, declared, st.location, cx.lex, lint)
        with located(st.location):
            base_name = cx.expand(str(st.base), meta_env)
            if not base_name:
                raise DockerfileError(f"base name ({st.base}) should not be blank")
            platform = None
            if st.platform:
                matched, unmatched = from_args(str(st.platform), meta_env, declared,
                                               st.location, cx.lex, lint)
                value = cx.expand(str(st.platform), meta_env)
                from_platform(str(st.name or ""), str(st.platform), value, matched,
                              unmatched, meta_env, st.location, lint)
                if not value:
                    raise DockerfileError(f"empty platform value from expression {st.platform}")
                try:
                    platform = parse_platform(value)
                except UsageError as exc:
                    raise DockerfileError(f"failed to parse platform {st.platform}: "
                                          f"{exc.message}") from exc
        name = str(st.name or "").lower()
        ds = StageState(index=i, name=name, base_name=base_name, location=st.location,
                        stage=st, platform=platform)
        ds.namer.stage_name = name or f"stage-{i}"
        ds.namer.prefix_platform = multi
        ds.ignore_cache = cx.opts.no_cache or (bool(name) and name in no_cache_filter)
        graph.add(ds)
        if name and named_context(name, cx) is not None:
            # The stage is replaced by a named build context: none of it is built.
            ds.base = None
            ds.stage = None
            continue
        total = 1 if ds.base is None and base_name.lower() != "scratch" else 0
        total += sum(1 for ins in st.commands if isinstance(ins, STEP_TYPES))
        ds.namer.total = total
    for ds in list(graph.states):
        if ds.stage is None:
            continue
        for instr in ds.stage.commands:
            with located(instr.location):
                cmd = graph.command(instr)
            ds.commands.append(cmd)
            for src in cmd.sources:
                if src is not None:
                    ds.deps[src] = instr
    return graph


def _pick_target(graph: StageGraph, target: str | None) -> StageState:
    real = [s for s in graph.states if not s.implicit]
    if not target:
        return real[-1]
    found = graph.find(target)
    if found is None or found.implicit:
        names = [s.name for s in real if s.name]
        raise UserError(
            suggest(f"target stage {go_quote(target)} could not be found", target, names,
                    case_sensitive=True),
            hint=f"stages: {', '.join(names)}" if names else "the Dockerfile has no named stages",
        )
    return found


def _init_onbuild(graph: StageGraph, needed: set[StageState], cx: ConvertContext) -> bool:
    """Prepend ONBUILD triggers to the stages that inherit them; True if that added
    dependencies (which must be resolved in turn)."""
    new_deps = False
    for ds in [s for s in graph.states if s in needed]:
        if ds.onbuild_init or ds.implicit or ds.dispatched:
            continue
        ds.onbuild_init = True
        if ds.base is not None:
            triggers = [cmd.instr.expression for cmd in ds.base.commands
                        if isinstance(cmd.instr, Onbuild)]
        elif ds.image is not None:
            triggers = ds.image.onbuild()
        else:
            triggers = []
        if not triggers:
            continue
        commands = []
        for trigger in triggers:
            instr = parse_trigger(trigger, ds.location, cx.opts.dockerfile_name)
            with located(ds.location):
                cmd = graph.command(instr, onbuild=True)
            for src in cmd.sources:
                if src is not None:
                    ds.deps[src] = instr
                    new_deps = True
            commands.append(cmd)
        ds.commands = commands + ds.commands
        ds.namer.total += sum(1 for c in commands if isinstance(c.instr, STEP_TYPES))
    return new_deps


def _init_stage(ds: StageState, cx: ConvertContext) -> None:
    """Start a stage from its base stage or resolved image (BuildKit's init)."""
    if ds.base is not None:
        base = ds.base
        ds.state = base.state
        ds.platform = base.platform
        assert base.image is not None and base.scope is not None
        ds.image = base.image.clone()
        ds.scope = base.scope.child(reapply=ds.image.env())
        ds.workdir_set = base.workdir_set  # a WORKDIR of the base stage counts (lint)
    assert ds.image is not None
    # The inherited triggers were compiled into this stage; grandchildren don't see them.
    ds.image.set_field("OnBuild", None)
    ds.image.ensure_path()
    if ds.scope is None:
        ds.scope = cx.build_args.stage_scope(cx.meta, ds.image.env())
    if ds.base is None:
        wd = ds.image.config.get("WorkingDir")
        if wd:
            # BuildKit runs the base's workdir through WORKDIR's rule (without a commit).
            wd = normalize_workdir(str(wd), str(wd))
            ds.image.set_field("WorkingDir", wd)
            ds.state = ds.state.dir(wd)
        user = ds.image.config.get("User")
        if user:
            ds.state = ds.state.user(str(user))
        if cx.opts.network and cx.opts.network != "default":
            ds.state = ds.state.network(cx.opts.network)
        for host, ip in cx.opts.extra_hosts:
            ds.state = ds.state.add_extra_host(host, ip)


def _dispatch_stage(ds: StageState, cx: ConvertContext) -> None:
    with located(ds.location):
        _init_stage(ds, cx)
    ds.dispatched = True
    for cmd in ds.commands:
        cx.current_onbuild = cmd.onbuild
        with located(getattr(cmd.instr, "location", None)):
            dispatch(ds, cmd, cx)
    cx.current_onbuild = False
