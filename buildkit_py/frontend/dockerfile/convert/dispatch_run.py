"""RUN: command line (exec/shell form, heredocs), env, mounts, network, security."""

from __future__ import annotations

import dataclasses
import re

from buildkit_py import llb
from buildkit_py.errors import DockerfileError
from buildkit_py.frontend.dockerfile.convert.dispatch_context import ConvertContext
from buildkit_py.frontend.dockerfile.convert.dispatch_meta import with_shell
from buildkit_py.frontend.dockerfile.convert.names import summarize_heredoc, uppercase_command
from buildkit_py.frontend.dockerfile.convert.run_mounts import run_mounts
from buildkit_py.frontend.dockerfile.convert.stage_state import StageState
from buildkit_py.frontend.dockerfile.instructions.model import Run
from buildkit_py.frontend.dockerfile.parser.nodes import Heredoc
from buildkit_py.llb.metadata import BUILD_ARGS

# A command that is nothing but one heredoc word: ``<<EOF``, ``<<-"EOF"``, ``3<<'X'``.
_SINGLE_HEREDOC = re.compile(r"^\s*\d*<<-?\s*(?:\"[^\"]+\"|'[^']+'|[^\s\"'<>|&;]+)\s*$")
_PIPES_DIR = "/dev/pipes/"


def _command_line(d: StageState, c: Run, cx: ConvertContext) -> tuple[list[str], list[llb.Mount],
                                                                       str]:
    """argv, extra mounts (a shebang heredoc script) and the vertex name suffix."""
    assert d.image is not None
    args = list(c.command)
    mounts: list[llb.Mount] = []
    suffix = ""
    heredocs: list[Heredoc] = list(c.heredocs)
    if heredocs:
        if len(args) != 1 or not c.prepend_shell:
            raise DockerfileError(f"parsing produced an invalid run command: {args}")
        if _SINGLE_HEREDOC.match(args[0]):
            doc = heredocs[0]
            data = doc.body()
            if d.image.os != "windows" and data.startswith("#!"):
                # Written to a read-only mount and executed directly: its shebang picks
                # the interpreter.
                script = llb.scratch().file(
                    llb.mkfile(f"/{doc.name}", 0o755, data, timestamp=cx.timestamp()),
                    description="[internal] preparing inline document")
                mounts.append(llb.bind_mount(_PIPES_DIR, script, selector="/", readonly=True))
                args = [_PIPES_DIR + doc.name]
            else:
                args = [data]
            suffix = f" ({summarize_heredoc(data)})"
        else:
            # The shell sees the heredocs itself: re-join the line with the bodies.
            full = args[0]
            for doc in heredocs:
                full += "\n" + doc.content + doc.name
            args = [full]
    if c.prepend_shell:
        args = with_shell(d.image, args)
    return args, mounts, suffix


def dispatch_run(d: StageState, cmd_sources: list[StageState | None], c: Run,
                 cx: ConvertContext) -> None:
    assert d.image is not None and d.scope is not None
    args, extra, suffix = _command_line(d, c, cx)
    scope_env = d.scope.expand_env()
    mounted = run_mounts(d, list(c.mounts), cmd_sources, cx)
    env_pairs = [*scope_env.items(), *mounted.env]
    # Secret env vars show as **** in the vertex name, never their value.
    name_env = dict(scope_env)
    for secret_name in mounted.secret_env_names:
        name_env[secret_name] = "****"
    name = d.namer.name(
        uppercase_command(cx.display_text(c, name_env, raw=True)) + suffix,
        d.platform, scope_env, onbuild=cx.current_onbuild)
    network = c.network or None
    security = c.security or None
    if network is not None and network not in ("default", "none", "host"):
        raise DockerfileError(f"unsupported network mode {network!r}",
                              hint="use default, none or host")
    if security is not None and security not in ("sandbox", "insecure"):
        raise DockerfileError(f"unsupported security mode {security!r}",
                              hint="use sandbox or insecure")
    if c.devices and not cx.labs:
        raise DockerfileError(
            "device feature is only supported in Dockerfile frontend 1.14.0-labs or later",
            hint="start the Dockerfile with # syntax=docker/dockerfile:1-labs")
    if cx.opts.shm_size > 0:
        # as BuildKit: a sized tmpfs replaces the runtime's /dev/shm
        extra.append(llb.tmpfs_mount("/dev/shm", size=cx.opts.shm_size))
    # The exec env is exactly the stage's variables (set directly: adding them one by one
    # would cost O(n) each).
    exec_state = dataclasses.replace(d.state, env=tuple(env_pairs)).run(
        args,
        mounts=[*extra, *mounted.mounts],
        network=network,
        security=security,
        hostname=cx.hostname or None,
        secret_env=mounted.secret_env,
        proxy_env=cx.proxy_env or None,
        ulimits=cx.opts.ulimits,
        cdi_devices=[(dev.name, not dev.required) for dev in c.devices],
        description=_run_description(name, c.original, d.scope.arg_names()),
        ignore_cache=d.ignore_cache,
        location=cx.location(c),
    )
    # --network/--security/env apply to this RUN only; later steps continue from the
    # stage's own values on the new filesystem.
    d.state = d.state.with_output(exec_state.root().output)
    prefix = d.scope.history_prefix()
    created_by = "RUN " + " ".join([prefix, *args] if prefix else args)
    d.image.commit(created_by, layer=True, buildkit=True, epoch=cx.epoch)


def _run_description(name: str, original: str, args: set[str]) -> dict[str, str]:
    """A RUN's metadata: its name and command, and (bkpy's own, outside the digest) the
    build args in scope, which an explained cache miss names as such."""
    description = {llb.CUSTOM_NAME: name, llb.DOCKERFILE_COMMAND: original}
    if args:
        description[BUILD_ARGS] = ",".join(sorted(args))
    return description
