"""Lint checks that need what only conversion knows: the variables a stage has at an
instruction, the global ARGs' defaults, the base image's platform, .dockerignore.

Each function fires BuildKit's rule at the point of conversion where BuildKit fires it;
the rules themselves (names, messages, on/off) are in :mod:`..lint`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from buildkit_py.errors import SourceLocation, UsageError
from buildkit_py.frontend.dockerfile.buildargs import BuildArgs
from buildkit_py.frontend.dockerfile.dockerignore import BadPatternError, IgnoreMatcher, go_clean
from buildkit_py.frontend.dockerfile.instructions import model as m
from buildkit_py.frontend.dockerfile.lint import Linter
from buildkit_py.frontend.dockerfile.shell_lex import ExpansionError, ShellLex
from buildkit_py.frontend.dockerfile.suggest import search
from buildkit_py.platforms import Platform, parse_platform
from buildkit_py.registry.reference import InvalidReferenceError, parse_reference

# Build args that never become environment variables, so never "undefined".
_NON_ENV_ARGS = frozenset({"BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"})


def _mount_words(instr: m.Run) -> list[str]:
    return [v for spec in instr.mounts for _, v in spec.fields if v is not None]


def _copy_words(instr: m.Copy | m.Add) -> list[str]:
    words = [instr.chown or "", instr.chmod or ""]
    if isinstance(instr, m.Add):
        words.append(instr.checksum or "")
    return [*words, *instr.sources, instr.dest]


# The words of each instruction that BuildKit expands before dispatching it (its
# SupportsSingleWordExpansion), in its order; ARG is checked on its own.
_EXPANDED: dict[type[m.Instruction], Callable[[Any], list[str]]] = {
    m.Env: lambda c: [w for p in c.pairs for w in (p.key, p.value)],
    m.Label: lambda c: [w for p in c.pairs for w in (p.key, p.value)],
    m.Copy: _copy_words,
    m.Add: _copy_words,
    m.Workdir: lambda c: [c.path],
    m.Run: _mount_words,
    m.User: lambda c: [c.user],
    m.Volume: lambda c: list(c.volumes),
    m.StopSignal: lambda c: [c.signal],
}


def _report_unmatched(instr: m.Instruction, unmatched: Iterable[str], declared: set[str],
                      env: Mapping[str, str], lint: Linter) -> None:
    for name in sorted(unmatched):
        if name in declared or name in _NON_ENV_ARGS:
            continue
        lint.run("UndefinedVar", instr.location, name,
                 search(name, list(env), case_sensitive=True) or "")


def undefined_vars(instr: m.Instruction, env: Mapping[str, str], declared: set[str],
                   lex: ShellLex, lint: Linter) -> None:
    """UndefinedVar: variables an instruction uses that neither the stage's environment
    nor an ARG of the stage defines."""
    words = _EXPANDED.get(type(instr))
    if words is None:
        return
    texts = [(lex, w) for w in words(instr)]
    if isinstance(instr, (m.Copy, m.Add)):  # heredoc bodies, quotes kept (ExpandRaw)
        texts += [(ShellLex.for_heredoc(), c.data) for c in instr.contents if c.expand]
    for word_lex, word in texts:
        if not word or "$" not in word:
            continue
        try:
            _, _, unmatched = word_lex.process_word_with_matches(word, env)
        except ExpansionError:
            return
        _report_unmatched(instr, unmatched, declared, env, lint)


def undefined_arg_defaults(instr: m.Arg, env: Mapping[str, str], declared: set[str],
                           build_args: Mapping[str, str], lex: ShellLex, lint: Linter) -> None:
    """UndefinedVar in the default of an ARG that no --build-arg overrides."""
    known = set(declared)
    for a in instr.args:
        known.add(a.key)
        if a.value is None or a.key in build_args or "$" not in a.value:
            continue
        try:
            _, _, unmatched = lex.process_word_with_matches(a.value, env)
        except ExpansionError:
            continue
        _report_unmatched(instr, unmatched, known, env, lint)


def invalid_default_base(df: m.Dockerfile, lex: ShellLex, build_args: BuildArgs,
                         lint: Linter) -> None:
    """InvalidDefaultArgInFrom: a FROM whose image name is empty or invalid when every
    global ARG keeps its default (no --build-arg given)."""
    defaults = BuildArgs({}, target_platform=build_args.target_platform,
                         build_platform=build_args.build_platform,
                         target_stage=build_args.target_stage).meta_scope()
    try:
        for arg in df.meta_args:
            for a in arg.args:
                defaults.declare(a.key, a.value, expand=lex.process_word)
    except (ExpansionError, ValueError):
        return
    env = defaults.env()
    for st in df.stages:
        try:
            name = lex.process_word(st.base, env)
        except ExpansionError:
            return
        try:
            parse_reference(name)
        except (InvalidReferenceError, ValueError):
            lint.run("InvalidDefaultArgInFrom", st.location, st.base)


def from_args(word: str, env: Mapping[str, str], declared: Iterable[str],
              location: SourceLocation | None, lex: ShellLex,
              lint: Linter) -> tuple[set[str], set[str]]:
    """UndefinedArgInFrom for one FROM word; returns (matched, unmatched) names."""
    try:
        _, matched, unmatched = lex.process_word_with_matches(word, env)
    except ExpansionError:
        return set(), set()
    keys = sorted(set(declared) | set(env))
    for name in sorted(unmatched):
        if name in keys:
            continue
        lint.run("UndefinedArgInFrom", location, name,
                 search(name, keys, case_sensitive=True) or "")
    return matched, unmatched


def from_platform(stage_name: str, raw: str, value: str, matched: set[str],
                  unmatched: set[str], env: Mapping[str, str],
                  location: SourceLocation | None, lint: Linter) -> None:
    """RedundantTargetPlatform and FromPlatformFlagConstDisallowed for FROM --platform."""
    if len(matched) == 1 and not unmatched and "TARGETPLATFORM" in matched \
            and value == env.get("TARGETPLATFORM"):
        lint.run("RedundantTargetPlatform", location, raw)
    if matched or unmatched:
        return
    try:
        p = parse_platform(value)
    except (UsageError, ValueError):
        return
    if p.os in stage_name or p.architecture in stage_name:
        return
    lint.run("FromPlatformFlagConstDisallowed", location, value)


def base_platform(name: str, expected: Platform, config: Mapping[str, object],
                  location: SourceLocation | None, lint: Linter) -> None:
    """InvalidBaseImagePlatform: the image pulled is for another OS or architecture."""
    os_name = str(config.get("os") or "")
    arch = str(config.get("architecture") or "")
    if os_name == expected.os and arch == expected.architecture:
        return
    actual = Platform(os_name, arch, str(config.get("variant") or ""),
                      str(config.get("os.version") or "")).normalized()
    lint.run("InvalidBaseImagePlatform", location, name,
             expected.normalized().format_all(), actual.format_all())


def copy_ignored(cmd: str, sources: list[str], patterns: list[str],
                 location: SourceLocation | None, lint: Linter) -> None:
    """CopyIgnoredFile: a COPY/ADD source from the main context that .dockerignore
    excludes (not checked when the file has ``!`` exceptions, as in BuildKit)."""
    if not patterns:
        return
    try:
        matcher = IgnoreMatcher(patterns)
    except BadPatternError:
        return
    if matcher.has_exceptions or not matcher:
        return
    root_ignored = any(p in ("*", "**", "**/*") for p in matcher.patterns)
    for src in sources:
        path = go_clean(src)
        if path in (".", "/"):
            # the context's root: only a pattern excluding every entry excludes it
            if root_ignored:
                lint.run("CopyIgnoredFile", location, cmd, path)
        elif matcher.matches(path):
            lint.run("CopyIgnoredFile", location, cmd, path)


def expose_ports(ports: list[str], location: SourceLocation | None, lint: Linter) -> None:
    """ExposeProtoCasing and ExposeInvalidFormat for each EXPOSE word."""
    for raw in ports:
        parts = raw.split(":")
        if len(parts) == 1:
            ip, host, container = "", "", parts[0]
        elif len(parts) == 2:
            ip, host, container = "", parts[0], parts[1]
        else:
            ip, host, container = ":".join(parts[:-2]), parts[-2], parts[-1]
        port, _, proto = container.partition("/")
        if not port:
            continue  # an error when the ports are parsed
        if proto and proto != proto.lower():
            lint.run("ExposeProtoCasing", location, raw)
        if ip or host:
            lint.run("ExposeInvalidFormat", location, raw)
