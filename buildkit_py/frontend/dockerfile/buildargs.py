"""ARG scoping, automatic platform args, proxy args and BuildKit's built-in args.

The converter drives three objects:

``BuildArgs(overrides, target_platform=, build_platform=, target_stage=)``
    The request's ``--build-arg`` values. It creates the scopes below, records which
    build-args an ARG declaration consumed (:meth:`BuildArgs.unconsumed` feeds the
    "build-args not consumed" warning), exposes the proxy env for every RUN
    (:meth:`BuildArgs.proxy_env`) and the ``BUILDKIT_*`` options
    (:meth:`BuildArgs.builtin_options`).

``MetaArgs`` (``build_args.meta_scope()``)
    The global scope: automatic platform args (a ``--build-arg`` of the same name
    overrides them) plus the ARGs before the first FROM, in order. Its :meth:`env` is
    what FROM lines (image and ``--platform``) are expanded against.

``ArgScope`` (``build_args.stage_scope(meta, image_env)``, ``scope.child()``)
    The variables of one stage: the base image's ENV, then ENV instructions
    (:meth:`ArgScope.set_env`) and ARG declarations (:meth:`ArgScope.declare`) in
    Dockerfile order; as in BuildKit both write the same environment, the later write
    wins. :meth:`ArgScope.expand_env` is the mapping for word expansion,
    :meth:`ArgScope.env` the ``K=V`` list of a RUN (part of its cache key; proxy
    variables are not, they come from :meth:`BuildArgs.proxy_env`), and
    :meth:`ArgScope.history_args` the ``|N K=V`` prefix of a RUN history entry.
    ``FROM <stage>`` continues from ``parent.child()``.

Resolution of ``ARG name[=default]`` in a stage (BuildKit's order): the build-arg
value if given; else the default, expanded against the stage so far (pass ``expand``
so that it is only expanded when needed, as BuildKit does); else, if declared without
a default, the global (meta) value; else unset. Global ARG defaults are expanded
against the automatic args and the globals before them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from buildkit_py.errors import UsageError
from buildkit_py.platforms import Platform

__all__ = [
    "AUTOMATIC_ARGS",
    "BUILDKIT_BUILTIN_ARGS",
    "PROXY_ARGS",
    "ArgScope",
    "BuildArgs",
    "BuiltinOptions",
    "MetaArgs",
    "automatic_args",
    "is_proxy_arg",
]

AUTOMATIC_ARGS: Final = (
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDOSVERSION",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETOSVERSION",
    "TARGETARCH",
    "TARGETVARIANT",
    "TARGETSTAGE",
)

_PROXY_BASE: Final = ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")
PROXY_ARGS: Final = frozenset(_PROXY_BASE + tuple(n.lower() for n in _PROXY_BASE))

BUILDKIT_BUILTIN_ARGS: Final = frozenset({
    "BUILDKIT_BUILD_NAME",
    "BUILDKIT_CACHE_MOUNT_NS",
    "BUILDKIT_CONTEXT_KEEP_GIT_DIR",
    "BUILDKIT_DOCKERFILE_CHECK",
    "BUILDKIT_INLINE_CACHE",
    "BUILDKIT_MULTI_PLATFORM",
    "BUILDKIT_SANDBOX_HOSTNAME",
    "BUILDKIT_SBOM_SCAN_CONTEXT",
    "BUILDKIT_SBOM_SCAN_STAGE",
    "BUILDKIT_SYNTAX",
    "SOURCE_DATE_EPOCH",
})

# Declared ARGs BuildKit records but never puts into the environment.
_NON_ENV_ARGS: Final = frozenset({"BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"})

_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE: Final = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def is_proxy_arg(name: str) -> bool:
    """``HTTP_PROXY`` & co. in any letter case (BuildKit compares case-insensitively)."""
    return name.upper() in _PROXY_BASE


def automatic_args(target: Platform, build: Platform, target_stage: str) -> dict[str, str]:
    """BuildKit's automatic platform args. ``TARGETPLATFORM`` includes the OS version
    (``windows(10.0.17763)/amd64``), ``BUILDPLATFORM`` does not."""
    return {
        "BUILDPLATFORM": build.format(),
        "BUILDOS": build.os,
        "BUILDOSVERSION": build.os_version,
        "BUILDARCH": build.architecture,
        "BUILDVARIANT": build.variant,
        "TARGETPLATFORM": target.format_all(),
        "TARGETOS": target.os,
        "TARGETOSVERSION": target.os_version,
        "TARGETARCH": target.architecture,
        "TARGETVARIANT": target.variant,
        "TARGETSTAGE": target_stage,
    }


def _parse_bool(name: str, value: str) -> bool:
    """Go ``strconv.ParseBool`` (the parser BuildKit uses for its options)."""
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise UsageError(
        f"invalid boolean value for {name}: {value!r}", hint="use true/false or 1/0")


@dataclass(frozen=True)
class BuiltinOptions:
    """The ``BUILDKIT_*`` / ``SOURCE_DATE_EPOCH`` build-args as typed options."""

    cache_mount_ns: str = ""
    context_keep_git_dir: bool = False
    inline_cache: bool = False
    multi_platform: bool | None = None  # None: decided by the number of platforms
    sandbox_hostname: str = "buildkitsandbox"
    syntax: str = ""
    build_name: str = ""
    dockerfile_check: str = ""
    source_date_epoch: int | None = None

    @classmethod
    def from_build_args(cls, args: Mapping[str, str]) -> BuiltinOptions:
        def flag(name: str) -> bool | None:
            value = args.get(name)
            return None if value is None else _parse_bool(name, value)

        epoch: int | None = None
        raw_epoch = args.get("SOURCE_DATE_EPOCH", "")
        if raw_epoch and raw_epoch != "context":
            try:
                epoch = int(raw_epoch)
            except ValueError:
                raise UsageError(
                    f"invalid SOURCE_DATE_EPOCH: {raw_epoch!r}",
                    hint="use Unix seconds, e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)",
                ) from None
            if epoch < 0:
                raise UsageError(f"invalid SOURCE_DATE_EPOCH: {raw_epoch!r} is negative")
        return cls(
            cache_mount_ns=args.get("BUILDKIT_CACHE_MOUNT_NS", ""),
            context_keep_git_dir=bool(flag("BUILDKIT_CONTEXT_KEEP_GIT_DIR")),
            inline_cache=bool(flag("BUILDKIT_INLINE_CACHE")),
            multi_platform=flag("BUILDKIT_MULTI_PLATFORM"),
            sandbox_hostname=args.get("BUILDKIT_SANDBOX_HOSTNAME") or "buildkitsandbox",
            syntax=args.get("BUILDKIT_SYNTAX", ""),
            build_name=args.get("BUILDKIT_BUILD_NAME", ""),
            dockerfile_check=args.get("BUILDKIT_DOCKERFILE_CHECK", ""),
            source_date_epoch=epoch,
        )


class BuildArgs:
    """The ``--build-arg`` values of one build request (one target platform)."""

    def __init__(
        self,
        overrides: Mapping[str, str],
        *,
        target_platform: Platform,
        build_platform: Platform,
        target_stage: str,
    ) -> None:
        self.overrides: dict[str, str] = dict(overrides)
        self.target_platform = target_platform
        self.build_platform = build_platform
        self.target_stage = target_stage
        self._consumed: set[str] = set()

    # consumption bookkeeping

    def value(self, name: str) -> str | None:
        """The build-arg value for ``name`` (marks it consumed), or None."""
        value = self.overrides.get(name)
        if value is not None:
            self._consumed.add(name)
        return value

    def mark_consumed(self, names: Iterable[str]) -> None:
        self._consumed.update(n for n in names if n in self.overrides)

    def unconsumed(self) -> list[str]:
        """Sorted build-args no ARG declared and that BuildKit does not use itself."""
        return sorted(
            name
            for name in self.overrides
            if name not in self._consumed
            and name not in BUILDKIT_BUILTIN_ARGS
            and name not in AUTOMATIC_ARGS
            and not is_proxy_arg(name)
        )

    # derived values

    def automatic(self) -> dict[str, str]:
        """Automatic platform args with same-named build-args applied."""
        values = automatic_args(self.target_platform, self.build_platform, self.target_stage)
        for name in values:
            override = self.overrides.get(name)
            if override is not None:
                values[name] = override
        return values

    def proxy_env(self) -> dict[str, str]:
        """Env for every RUN from proxy build-args, declared or not, both spellings
        (``HTTP_PROXY`` and ``http_proxy``). Not part of cache keys or history."""
        out: dict[str, str] = {}
        for name in sorted(self.overrides):  # deterministic when both spellings given
            if is_proxy_arg(name):
                upper = name.upper()
                out[upper] = out[upper.lower()] = self.overrides[name]
        return out

    def builtin_options(self) -> BuiltinOptions:
        return BuiltinOptions.from_build_args(self.overrides)

    # scopes

    def meta_scope(self) -> MetaArgs:
        return MetaArgs(self)

    def stage_scope(
        self, meta: MetaArgs, image_env: Iterable[str] | Mapping[str, str] = ()
    ) -> ArgScope:
        """A new stage on top of a base image whose config has ``image_env``."""
        return ArgScope(self, meta, _env_items(image_env))


def _env_items(env: Iterable[str] | Mapping[str, str]) -> dict[str, str]:
    if isinstance(env, Mapping):
        return dict(env)
    out: dict[str, str] = {}
    for item in env:
        key, _, value = item.partition("=")
        out[key] = value
    return out


class MetaArgs:
    """Global (pre-FROM) scope; see the module docstring."""

    def __init__(self, build_args: BuildArgs) -> None:
        self._build_args = build_args
        self._env = build_args.automatic()
        self._declared: list[str] = []

    def declare(
        self,
        name: str,
        default: str | None,
        *,
        expand: Callable[[str, Mapping[str, str]], str] | None = None,
    ) -> str | None:
        """Declare a global ARG; returns its value (None: declared without value).
        ``expand(default, env)`` is called only when the default is used."""
        value = self._build_args.value(name)
        if value is None and default is not None:
            value = expand(default, self._env) if expand is not None else default
        if value is not None:
            self._env[name] = value
        self._declared.append(name)
        return value

    def get(self, name: str) -> str | None:
        return self._env.get(name)

    def env(self) -> dict[str, str]:
        """Variables visible to FROM lines (a copy)."""
        return dict(self._env)

    @property
    def declared(self) -> list[str]:
        return list(self._declared)


@dataclass
class _Declared:
    name: str
    value: str | None


class ArgScope:
    """Variables of one stage; see the module docstring."""

    def __init__(self, build_args: BuildArgs, meta: MetaArgs, env: dict[str, str]) -> None:
        self._build_args = build_args
        self._meta = meta
        self._env = env
        self._args: list[_Declared] = []

    def child(self, image_env: Iterable[str] | Mapping[str, str] | None = None, *,
              reapply: Iterable[str] = ()) -> ArgScope:
        """Scope of a stage built ``FROM`` this one: inherits its env and ARGs; the
        ``reapply`` entries (the image config's env) are set again in order, as BuildKit's
        stage init does, which moves them after the inherited ARG values."""
        env = dict(self._env) if image_env is None else _env_items(image_env)
        for key, value in _env_items(reapply).items():
            env.pop(key, None)
            env[key] = value
        scope = ArgScope(self._build_args, self._meta, env)
        scope._args = list(self._args)
        return scope

    def declare(
        self,
        name: str,
        default: str | None,
        *,
        expand: Callable[[str, Mapping[str, str]], str] | None = None,
    ) -> str | None:
        """Declare ``ARG name[=default]``; returns the resolved value or None.
        ``expand(default, env)`` expands the default against the stage so far; it is
        not called when a build-arg overrides the default."""
        value = self._build_args.value(name)
        if value is None:
            if default is not None:
                value = expand(default, self._env) if expand is not None else default
            else:
                value = self._meta.get(name)
        if value is not None and name not in _NON_ENV_ARGS:
            self._set(name, value)
        self._args.append(_Declared(name, value))
        return value

    def set_env(self, key: str, value: str) -> None:
        """An ENV instruction (or anything else that sets a variable)."""
        self._set(key, value)

    def _set(self, key: str, value: str) -> None:
        # A variable set again moves to the end, as in BuildKit's llb env list: the order
        # a RUN's process sees (the image config keeps its place instead).
        self._env.pop(key, None)
        self._env[key] = value

    def expand_env(self) -> Mapping[str, str]:
        """The mapping word expansion uses (live view; do not mutate)."""
        return self._env

    def env(self) -> list[str]:
        """``K=V`` entries of a RUN's environment, in last-set order."""
        return [f"{k}={v}" for k, v in self._env.items()]

    def arg_names(self) -> set[str]:
        """Names declared by ARG in this stage (BuildKit's UndefinedVar check does not
        report them, even when they have no value)."""
        return {a.name for a in self._args}

    def declared_args(self) -> list[tuple[str, str | None]]:
        """ARG declarations in order, with the value each resolved to."""
        return [(a.name, a.value) for a in self._args]

    def history_args(self) -> list[tuple[str, str]]:
        """Pairs for RUN's history/cache prefix ``|N K=V``: each declared name once,
        in first-declaration order, with its current env value (or declared value)."""
        out: dict[str, str] = {}
        for arg in self._args:
            current = self._env.get(arg.name)
            out[arg.name] = current if current is not None else (arg.value or "")
        return list(out.items())

    def history_prefix(self) -> str:
        """``|N K=V ...`` (empty when no ARG was declared), as in ``created_by``."""
        pairs = self.history_args()
        if not pairs:
            return ""
        return " ".join([f"|{len(pairs)}", *(f"{k}={v}" for k, v in pairs)])
