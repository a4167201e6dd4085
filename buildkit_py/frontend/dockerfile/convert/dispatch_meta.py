"""Instructions that only change the image config and stage values (no LLB op, except
WORKDIR's mkdir): ENV LABEL MAINTAINER EXPOSE USER VOLUME STOPSIGNAL WORKDIR SHELL CMD
ENTRYPOINT HEALTHCHECK ARG ONBUILD."""

from __future__ import annotations

from typing import Any

from buildkit_py import llb
from buildkit_py.errors import DockerfileError
from buildkit_py.frontend.dockerfile.convert.dispatch_context import ConvertContext
from buildkit_py.frontend.dockerfile.convert.image_config import ImageConfig
from buildkit_py.frontend.dockerfile.convert.lint_checks import expose_ports
from buildkit_py.frontend.dockerfile.convert.names import uppercase_command
from buildkit_py.frontend.dockerfile.convert.stage_state import StageState
from buildkit_py.frontend.dockerfile.convert.values import parse_port_specs, validate_stop_signal
from buildkit_py.frontend.dockerfile.dockerignore import go_clean
from buildkit_py.frontend.dockerfile.instructions import model as m
from buildkit_py.frontend.dockerfile.lint import looks_secret
from buildkit_py.gostrings import go_quote_list


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String()``: ``0s``, ``500ms``, ``1.5s``, ``1m30s``, ``1h0m0s``."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)

    def frac(value: int, unit: int) -> str:
        whole, rest = divmod(value, unit)
        if not rest:
            return str(whole)
        digits = str(rest).rjust(len(str(unit)) - 1, "0").rstrip("0")
        return f"{whole}.{digits}"

    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{frac(ns, 1_000)}\u00b5s"
    if ns < 1_000_000_000:
        return f"{sign}{frac(ns, 1_000_000)}ms"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = frac(rest, 1_000_000_000)
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{sign}{minutes}m{seconds}s"
    return f"{sign}{seconds}s"


def default_shell(os_name: str) -> list[str]:
    return ["cmd", "/S", "/C"] if os_name == "windows" else ["/bin/sh", "-c"]


def with_shell(image: ImageConfig, args: list[str]) -> list[str]:
    """Wrap shell-form ``args`` in the stage's SHELL (default ``/bin/sh -c``)."""
    shell = image.config.get("Shell") or default_shell(image.os)
    return [*shell, " ".join(args)]


def _img(d: StageState) -> ImageConfig:
    assert d.image is not None
    return d.image


def _check_secret_name(instruction: str, name: str, c: m.Instruction,
                       cx: ConvertContext) -> None:
    if looks_secret(name):
        cx.lint.run("SecretsUsedInArgOrEnv", c.location, instruction, name)


def _legacy_pairs(c: m.Env | m.Label, cx: ConvertContext) -> None:
    for p in c.pairs:
        if p.legacy:
            cx.lint.run("LegacyKeyValueFormat", c.location, c.keyword or c.NAME)


def _used_once(d: StageState, c: m.Instruction, cx: ConvertContext) -> None:
    """MultipleInstructionsDisallowed, reported at the earlier one (which is ignored)."""
    earlier = d.last_set.get(c.NAME)
    if earlier is not None:
        cx.lint.run("MultipleInstructionsDisallowed", earlier, c.keyword or c.NAME)
    d.last_set[c.NAME] = c.location


def _json_args(d: StageState, c: m.CommandLine, cx: ConvertContext) -> None:
    if c.prepend_shell and not _img(d).config.get("Shell"):
        cx.lint.run("JSONArgsRecommended", c.location, c.keyword or c.NAME)


def dispatch_env(d: StageState, c: m.Env, cx: ConvertContext) -> None:
    assert d.scope is not None
    env = d.scope.expand_env()
    # Every value sees the state before the instruction (ENV a=1 b=$a uses the old a).
    pairs = [(cx.expand(p.key, env), cx.expand(p.value, env)) for p in c.pairs]
    msg = "ENV"
    _legacy_pairs(c, cx)
    # A key that expands to nothing is kept (BuildKit only rejects a blank key as written).
    for key, value in pairs:
        _check_secret_name("ENV", key, c, cx)
        _img(d).set_env(key, value)
        d.scope.set_env(key, value)
        msg += f" {key}={value}"
    _img(d).commit(msg, layer=False, buildkit=False, epoch=cx.epoch)


def dispatch_label(d: StageState, c: m.Label, cx: ConvertContext) -> None:
    assert d.scope is not None
    env = d.scope.expand_env()
    pairs = [(cx.expand(p.key, env), cx.expand(p.value, env)) for p in c.pairs]
    _legacy_pairs(c, cx)
    _img(d).set_labels(dict(pairs))
    msg = "LABEL" + "".join(f" {k}={v}" for k, v in pairs)
    _img(d).commit(msg, layer=False, buildkit=False, epoch=cx.epoch)


def dispatch_maintainer(d: StageState, c: m.Maintainer, cx: ConvertContext) -> None:
    _img(d).data["author"] = c.maintainer
    _img(d).commit(f"MAINTAINER {c.maintainer}", layer=False, buildkit=False, epoch=cx.epoch)


def dispatch_expose(d: StageState, c: m.Expose, cx: ConvertContext) -> None:
    assert d.scope is not None
    env = d.scope.expand_env()
    words: list[str] = []
    for raw in c.ports:
        words.extend(cx.lex.process_words(raw, env))
    expose_ports(words, c.location, cx.lint)
    ports = parse_port_specs(words)
    _img(d).add_keys("ExposedPorts", ports)
    _img(d).commit(f"EXPOSE [{' '.join(ports)}]", layer=False, buildkit=False, epoch=cx.epoch)


def dispatch_user(d: StageState, c: m.User, cx: ConvertContext) -> None:
    assert d.scope is not None
    user = cx.expand(c.user, d.scope.expand_env())
    d.state = d.state.user(user)
    _img(d).set_field("User", user)
    _img(d).commit(f"USER {user}", layer=False, buildkit=False, epoch=cx.epoch)


def dispatch_volume(d: StageState, c: m.Volume, cx: ConvertContext) -> None:
    assert d.scope is not None
    env = d.scope.expand_env()
    volumes = [cx.expand(v, env) for v in c.volumes]
    for v in volumes:
        if not v:
            raise DockerfileError("VOLUME specified can not be an empty string")
    _img(d).add_keys("Volumes", volumes)
    _img(d).commit(f"VOLUME [{' '.join(volumes)}]", layer=False, buildkit=False, epoch=cx.epoch)


def dispatch_stopsignal(d: StageState, c: m.StopSignal, cx: ConvertContext) -> None:
    assert d.scope is not None
    signal = cx.expand(c.signal, d.scope.expand_env())
    validate_stop_signal(signal)
    _img(d).set_field("StopSignal", signal)
    _img(d).commit(f"STOPSIGNAL {signal}", layer=False, buildkit=False, epoch=cx.epoch)


def dispatch_shell(d: StageState, c: m.Shell, cx: ConvertContext) -> None:
    shell = list(c.shell)
    _img(d).set_field("Shell", shell)
    _img(d).commit(f"SHELL [{' '.join(shell)}]", layer=False, buildkit=False, epoch=cx.epoch)


def _command_args(d: StageState, c: m.CommandLine) -> list[str]:
    args = list(c.command)
    if c.prepend_shell:
        args = with_shell(_img(d), args)
    return args


def dispatch_cmd(d: StageState, c: m.Cmd, cx: ConvertContext) -> None:
    _used_once(d, c, cx)
    _json_args(d, c, cx)
    args = _command_args(d, c)
    img = _img(d)
    img.set_field("Cmd", args or None)  # CMD [] clears it (Go's omitempty)
    img.set_field("ArgsEscaped", True)  # BuildKit sets it on every CMD, whatever the OS
    d.cmd_set = True
    img.commit(f"CMD {go_quote_list(args)}", layer=False, buildkit=False, epoch=cx.epoch)


def dispatch_entrypoint(d: StageState, c: m.Entrypoint, cx: ConvertContext) -> None:
    _used_once(d, c, cx)
    _json_args(d, c, cx)
    args = _command_args(d, c)
    img = _img(d)
    img.set_field("Entrypoint", args or None)  # ENTRYPOINT [] clears it
    if not d.cmd_set:
        img.set_field("Cmd", None)  # an inherited CMD does not survive a new ENTRYPOINT
    img.commit(f"ENTRYPOINT {go_quote_list(args)}", layer=False, buildkit=False,
               epoch=cx.epoch)


def dispatch_healthcheck(d: StageState, c: m.Healthcheck, cx: ConvertContext) -> None:
    _used_once(d, c, cx)
    hc: dict[str, Any] = {"Test": list(c.test)}
    for key, value in (
        ("Interval", c.interval),
        ("Timeout", c.timeout),
        ("StartPeriod", c.start_period),
        ("StartInterval", c.start_interval),
        ("Retries", c.retries),
    ):
        if value:
            hc[key] = int(value)
    _img(d).set_field("Healthcheck", hc)
    # BuildKit prints the health config struct with Go's %+v.
    durations = " ".join(f"{name}:{go_duration(int(v or 0))}" for name, v in (
        ("Interval", c.interval), ("Timeout", c.timeout), ("StartPeriod", c.start_period),
        ("StartInterval", c.start_interval)))
    text = f"{{Test:[{' '.join(c.test)}] {durations} Retries:{int(c.retries or 0)}}}"
    _img(d).commit(f"HEALTHCHECK {text}", layer=False, buildkit=False, epoch=cx.epoch)


def dispatch_arg(d: StageState, c: m.Arg, cx: ConvertContext) -> None:
    assert d.scope is not None
    parts = []
    for a in c.args:
        _check_secret_name("ARG", a.key, c, cx)
        value = d.scope.declare(a.key, a.value, expand=cx.expand)
        parts.append(a.key if value is None else f"{a.key}={value}")
    _img(d).commit("ARG " + " ".join(parts), layer=False, buildkit=False, epoch=cx.epoch)


def dispatch_onbuild(d: StageState, c: m.Onbuild, cx: ConvertContext) -> None:
    triggers = _img(d).onbuild()
    triggers.append(c.expression)
    _img(d).set_field("OnBuild", triggers)


def normalize_workdir(current: str, path: str) -> str:
    """The new working directory, as BuildKit records it in the image config: an absolute
    ``path`` is kept verbatim (``/a/../b/`` stays), a relative one is joined to the current
    directory and cleaned, an empty one keeps the current directory."""
    parent = current or "/"
    if not parent.startswith("/"):
        parent = go_clean("/" + parent)
    if not path:
        return parent
    if path.startswith("/"):
        return path
    return go_clean(f"{parent}/{path}")


def dispatch_workdir(d: StageState, c: m.Workdir, cx: ConvertContext) -> None:
    assert d.scope is not None
    env = d.scope.expand_env()
    path = cx.expand(c.path, env)
    if not d.workdir_set and not path.startswith("/"):
        # only the first WORKDIR of a stage: a later relative one builds on it
        cx.lint.run("WorkdirRelativePath", c.location, path)
    d.workdir_set = True
    img = _img(d)
    wd = normalize_workdir(str(img.config.get("WorkingDir") or ""), path)
    img.set_field("WorkingDir", wd)
    d.state = d.state.dir(wd)
    layer = wd != "/"
    if layer:
        user = str(img.config.get("User") or "")
        name = d.namer.name(
            uppercase_command(cx.display_text(c, env)), d.platform, env,
            onbuild=cx.current_onbuild,
        )
        d.state = d.state.file(
            llb.mkdir(wd, 0o755, make_parents=True, owner=user or None,
                      timestamp=cx.timestamp()),
            description=name,
            ignore_cache=d.ignore_cache,
            location=cx.location(c),
        )
    img.commit(f"WORKDIR {wd}", layer=layer, buildkit=False, epoch=cx.epoch)
