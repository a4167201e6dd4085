"""``RUN --mount`` of every type -> llb mounts: bind, cache, tmpfs, secret, ssh."""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from buildkit_py import llb
from buildkit_py.errors import DockerfileError
from buildkit_py.frontend.dockerfile.convert.dispatch_context import ConvertContext
from buildkit_py.frontend.dockerfile.convert.stage_state import StageState
from buildkit_py.frontend.dockerfile.instructions.mounts import Mount, MountError


@dataclass
class RunMounts:
    mounts: list[llb.Mount] = field(default_factory=list)
    secret_env: list[llb.SecretEnv] = field(default_factory=list)
    env: list[tuple[str, str]] = field(default_factory=list)  # SSH_AUTH_SOCK
    secret_env_names: set[str] = field(default_factory=set)


def _source_state(d: StageState, source: StageState | None) -> llb.State:
    assert source is not None
    if not source.dispatched:
        raise DockerfileError(
            f"cannot mount from stage {source.display_name!r}, it needs to be defined "
            f"before current stage {d.display_name!r}")
    return source.state


def mount_from(spec: Any) -> str:
    """The unexpanded ``from=`` of a ``--mount`` (BuildKit never expands it)."""
    for key, value in getattr(spec, "fields", ()):
        if key == "from" and value:
            return str(value)
    return ""


def _resolve(spec: Any, env: Mapping[str, str], cx: ConvertContext) -> Mount:
    try:
        mount: Mount = spec.resolve(lambda word: cx.expand(word, env))
    except MountError as exc:
        raise DockerfileError(str(exc), hint=exc.hint) from exc
    return mount


def run_mounts(d: StageState, specs: list[Any], sources: list[StageState | None],
               cx: ConvertContext) -> RunMounts:
    assert d.scope is not None
    env = d.scope.expand_env()
    out = RunMounts()
    ssh_count = 0
    for i, spec in enumerate(specs):
        m = _resolve(spec, env, cx)
        kind = m.type
        target = m.target
        src_stage = sources[i] if i < len(sources) else None
        if kind == "secret":
            secret_id = m.secret_id
            optional = not m.required
            if m.env:
                out.secret_env.append(llb.SecretEnv(secret_id, m.env, optional=optional))
                out.secret_env_names.add(m.env)
            if target or not m.env:
                out.mounts.append(llb.secret_mount(
                    target or f"/run/secrets/{posixpath.basename(secret_id)}", secret_id,
                    uid=m.uid or 0, gid=m.gid or 0, mode=0o400 if m.mode is None else m.mode,
                    optional=optional))
            continue
        if kind == "ssh":
            target = target or f"/run/buildkit/ssh_agent.{ssh_count}"
            ssh_count += 1
            if ssh_count == 1 and "SSH_AUTH_SOCK" not in env:
                out.env.append(("SSH_AUTH_SOCK", target))
            out.mounts.append(llb.ssh_mount(
                target, m.ssh_id, uid=m.uid or 0, gid=m.gid or 0,
                mode=0o600 if m.mode is None else m.mode, optional=not m.required))
            continue
        # no target: the working directory, as in BuildKit
        full_target = posixpath.normpath(posixpath.join("/", d.state.get_dir(), target))
        if full_target == "/":
            raise DockerfileError('invalid mount target "/"')
        selector = posixpath.normpath(posixpath.join("/", m.source)) if m.source else "/"
        if kind == "tmpfs":
            tmpfs = llb.tmpfs_mount(full_target, size=m.size or 0)
            if m.read_only:  # BuildKit honours ro on every mount type
                tmpfs = dataclasses.replace(tmpfs, readonly=True)
            out.mounts.append(tmpfs)
            continue
        if kind == "cache":
            cache_id = m.id or posixpath.normpath(target)
            if cx.cache_ns:
                cache_id = f"{cx.cache_ns}/{cache_id}"
            seed: llb.State | None = None
            if src_stage is not None:
                seed = _source_state(d, src_stage)
            if selector == "/" and (m.uid, m.gid, m.mode) != (None, None, None):
                # The cache's root is this /cache, with the requested owner and mode (made
                # on the from= stage too, as BuildKit does; its llb Mkdir keeps only the
                # permission bits, so mode=1777 gives 0777).
                seed = (seed or llb.scratch()).file(
                    llb.mkdir("/cache", (0o755 if m.mode is None else m.mode) & 0o777,
                              owner=llb.Chown(m.uid or 0, m.gid or 0)),
                    description="[internal] setting cache mount permissions")
                selector = "/cache"
            mount = llb.cache_mount(full_target, cache_id, sharing=m.sharing or "shared",
                                    source=seed, selector="" if selector == "/" else selector)
            if m.read_only:
                mount = dataclasses.replace(mount, readonly=True)
            out.mounts.append(mount)
            continue
        if src_stage is not None:
            state = _source_state(d, src_stage)
        else:
            state = cx.main_context.state()
            cx.main_context.use(selector)
        out.mounts.append(llb.bind_mount(
            full_target, state, selector="" if selector == "/" else selector,
            readonly=m.read_only, no_output=True))
    return out
