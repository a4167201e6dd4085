"""ExecOp: run a process in a container on a writable layer over the root input."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buildkit_py import rootpath
from buildkit_py.errors import BuildError
from buildkit_py.executor.errors import RuntimeStartError, UnknownUserError
from buildkit_py.gostrings import go_quote
from buildkit_py.llb import ops_pb2
from buildkit_py.llb.cachemounts import cache_mount_id
from buildkit_py.snapshot import Compression
from buildkit_py.solver.worker import CacheMap, CacheMapDep, OpContext, Result
from buildkit_py.worker.ops.base import OpWorker
from buildkit_py.worker.ops.common import (
    content_digest,
    copy_local_into,
    filtered_copy,
    op_cache_digest,
    unwrap,
)
from buildkit_py.worker.ops.explain import describe_exec_change, exec_summary
from buildkit_py.worker.results import LocalResult, SnapshotResult
from buildkit_py.worker.session import BuildSession, FailedStep, say

if TYPE_CHECKING:
    from buildkit_py.executor.cdi import ContainerEdits
    from buildkit_py.executor.mounts import Mount

_NETWORK = {ops_pb2.NET_MODE_UNSET: "default", ops_pb2.NET_MODE_HOST: "host",
            ops_pb2.NET_MODE_NONE: "none"}
_SHARING = {ops_pb2.CACHE_SHARING_SHARED: "shared", ops_pb2.CACHE_SHARING_PRIVATE: "private",
            ops_pb2.CACHE_SHARING_LOCKED: "locked"}


def _platform(op: ops_pb2.Op) -> str | None:
    p = op.platform
    if not p.architecture:
        return None
    return "/".join(x for x in (p.os or "linux", p.architecture, p.variant) if x)


class ExecHandler:
    cache_map_is_cheap = True  # pure hashing: no thread-pool trip for the key

    def __init__(self, worker: OpWorker, op: ops_pb2.Op) -> None:
        self.worker = worker
        self.op = op
        self._cancel = threading.Event()

    def cache_map(self, ctx: OpContext) -> CacheMap:
        # Selectors and proxy env do not change what a step does; cache ids do not
        # either (the cache mount's content never enters a key, as in BuildKit).
        stripped = ops_pb2.Op()
        stripped.CopyFrom(self.op)
        stripped.exec.meta.ClearField("proxy_env")
        for m in stripped.exec.mounts:
            m.selector = ""
        deps: list[CacheMapDep] = [CacheMapDep() for _ in self.op.inputs]
        for m in self.op.exec.mounts:
            if m.input < 0 or m.mount_type != ops_pb2.MOUNT_TYPE_BIND:
                continue
            if m.dest != "/" and m.readonly and m.output < 0:
                # a read-only bind mount is keyed by the content it exposes
                deps[m.input] = CacheMapDep((m.selector or "/",),
                                            content_digest(self.worker, follow=True))
            elif m.selector:
                deps[m.input] = CacheMapDep((m.selector,))
        return CacheMap(op_cache_digest(stripped), tuple(deps))

    def cancel(self) -> None:
        self._cancel.set()

    # why it ran (solver.worker.ExplainsMisses)
    def change_summary(self, ctx: OpContext) -> str:
        return json.dumps(exec_summary(self.op, ctx.vertex.description), sort_keys=True)

    def describe_change(self, ctx: OpContext, old_summary: str) -> str | None:
        return describe_exec_change(self.op, ctx.vertex.description, old_summary)

    def _devices(self, ctx: OpContext, op: ops_pb2.ExecOp) -> ContainerEdits | None:
        """The container edits of the step's CDI devices (granted, and the specs read, when
        the LLB loaded)."""
        if not op.cdi_devices:
            return None
        cdi = self.worker.cdi
        if cdi is None:
            raise BuildError("this builder has CDI devices disabled")
        names: list[str] = []
        for d in op.cdi_devices:
            names += cdi.find(self.worker.device_alias(ctx, d.name), optional=d.optional)
        return cdi.edits(list(dict.fromkeys(names)))

    def exec(self, ctx: OpContext, inputs: Sequence[Result]) -> list[Result]:
        # reason: the OCI executor (~10 ms) only when a step runs, not for cached builds
        from buildkit_py.executor import ExecRequest, SecretMount
        from buildkit_py.executor.executor import STEP_ANNOTATION

        op = self.op.exec
        ins = [unwrap(r) for r in inputs]
        n_outputs = max((m.output for m in op.mounts), default=-1) + 1
        outputs: list[Result | None] = [None] * n_outputs
        if ctx.cancel.cancelled:
            raise BuildError("cancelled")
        remove_cb = ctx.cancel.add_callback(self._cancel.set)
        try:
            with contextlib.ExitStack() as stack:
                root_spec = next((m for m in op.mounts if m.dest == "/"), None)
                if root_spec is None:
                    raise BuildError("invalid exec op: no root mount")
                layers = []
                root_layer = stack.enter_context(self.worker.snapshots.write(
                    self._input(ins, root_spec.input), commit=root_spec.output >= 0))
                layers.append((root_spec.output, root_layer))
                mounts: list[Mount] = []
                for m in op.mounts:
                    if m is root_spec:
                        continue
                    mounts.append(self._mount(ctx, stack, m, ins, layers))
                for se in op.secretenv:
                    mounts.append(SecretMount(id=se.id, env=se.name, required=not se.optional))
                req = ExecRequest(
                    rootfs=root_layer.path,
                    args=list(op.meta.args),
                    env=list(op.meta.env) + self._proxy_env(op.meta.proxy_env),
                    cwd=op.meta.cwd or "/",
                    user=op.meta.user,
                    hostname=op.meta.hostname or "buildkitsandbox",
                    mounts=mounts,
                    network=_NETWORK.get(op.network, "default"),
                    security="insecure" if op.security == ops_pb2.SECURITY_MODE_INSECURE
                    else "sandbox",
                    platform=_platform(self.op),
                    extra_hosts=[(h.host, h.ip) for h in op.meta.extra_hosts],
                    ulimits=[(u.name, u.soft, u.hard) for u in op.meta.ulimit],
                    devices=self._devices(ctx, op),
                    secrets=self.worker.secrets(ctx),
                    annotations={STEP_ANNOTATION: ctx.vertex.name},
                )
                process = go_quote(" ".join(op.meta.args))
                try:
                    code = self.worker.executor.run(
                        req,
                        stdout=lambda b: ctx.progress.log(1, b),
                        stderr=lambda b: ctx.progress.log(2, b),
                        cancel=self._cancel,
                    )
                except RuntimeStartError as err:
                    # runc reports a process it cannot start on the step's output and exits
                    # 1; BuildKit then reports exit code 1
                    ctx.progress.log(2, f"{err.message}\n".encode())
                    code = 1
                except UnknownUserError as err:
                    raise BuildError(f"process {process} did not complete successfully: "
                                     f"{err.message}", hint=err.hint) from err
                valid = list(op.meta.valid_exit_codes) or [0]
                if code not in valid:
                    self._keep_failed(ctx, req, root_layer)
                    debugger = self.worker.debug_session(ctx)
                    if debugger is not None:
                        self._debug(ctx, req, debugger, code)
                    for _, layer in layers:
                        layer.discard = True
                    raise BuildError(
                        f"process {process} did not complete successfully: exit code: {code}")
            for index, layer in layers:
                if index >= 0:
                    outputs[index] = layer.result
        finally:
            remove_cb()
        missing = [i for i, o in enumerate(outputs) if o is None]
        if missing:
            raise BuildError(f"invalid exec op: outputs {missing} were not produced")
        return [o for o in outputs if o is not None]

    def _keep_failed(self, ctx: OpContext, req: Any, root_layer: Any) -> None:
        """Hand the failed step to whoever keeps it (the history, for a post-mortem)."""
        hooks = self.worker.failed_step_hooks(ctx)
        if not hooks:
            return
        sn = self.worker.sn
        step = FailedStep(
            name=ctx.vertex.name, parent=root_layer.parent, args=list(req.args),
            env=list(req.env), cwd=req.cwd, user=req.user, hostname=req.hostname,
            platform=_platform(self.op), network=req.network,
            write_diff=lambda f: sn.export_layer(root_layer.key, f,
                                                 compression=Compression.UNCOMPRESSED))
        for hook in hooks:
            try:
                hook(step)
            except (OSError, BuildError) as err:  # the build's own error matters more
                sys.stderr.write(f"bkpy: could not keep the failed step: {err}\n")

    def _debug(self, ctx: OpContext, req: Any, session: BuildSession, code: int) -> None:
        """The step debugger: the session's shell in the failed step's container (its files
        as the failure left them, its mounts, env, workdir and user) on the client's
        terminal."""
        shell = list(session.debug_shell or ["/bin/sh"])
        with session.terminal() as (inp, out):
            say(out, f"bkpy debug: {ctx.vertex.name} failed (exit code {code}); opening "
                     f"{' '.join(shell)} in its container. Exit the shell to end the build.")
            try:
                self.worker.executor.run_interactive(
                    dataclasses.replace(req, args=shell), cancel=self._cancel,
                    terminal=(inp, out), size=session.terminal_size())
            except (BuildError, OSError) as err:
                say(out, f"bkpy debug: {err}")
            say(out, "bkpy debug: the shell ended")

    @staticmethod
    def _input(ins: list[SnapshotResult | LocalResult], index: int
               ) -> SnapshotResult | LocalResult | None:
        return ins[index] if index >= 0 else None

    @staticmethod
    def _proxy_env(p: ops_pb2.ProxyEnv) -> list[str]:
        out = []
        for name in ("http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "all_proxy"):
            value = getattr(p, name)
            if value:
                out.append(f"{name.upper()}={value}")
                out.append(f"{name}={value}")
        return out

    def _mount(self, ctx: OpContext, stack: contextlib.ExitStack, m: ops_pb2.Mount,
               ins: list[SnapshotResult | LocalResult], layers: list) -> Mount:
        # reason: the executor's mounts (~4 ms) only when a step runs, not for cached builds
        from buildkit_py.executor import (
            BindMount,
            CacheMount,
            SecretMount,
            SshMount,
            TmpfsMount,
        )

        src = self._input(ins, m.input)
        if m.mount_type == ops_pb2.MOUNT_TYPE_BIND:
            if m.readonly:
                if isinstance(src, LocalResult) and src.keep is not None:
                    # the mount must not expose what .dockerignore excludes
                    path = stack.enter_context(
                        filtered_copy(self.worker.snapshots.tmp_root, src, m.selector))
                    return BindMount(target=m.dest, source=path, readonly=True)
                path = stack.enter_context(self.worker.snapshots.read(src))
                return BindMount(target=m.dest, source=path, selector=m.selector,
                                 readonly=True)
            base = src if isinstance(src, SnapshotResult) else None
            layer = stack.enter_context(self.worker.snapshots.write(base, commit=m.output >= 0))
            if isinstance(src, LocalResult):
                copy_local_into(src, Path(layer.path))
            layers.append((m.output, layer))
            return BindMount(target=m.dest, source=layer.path, selector=m.selector,
                             readonly=False)
        if m.mount_type == ops_pb2.MOUNT_TYPE_CACHE:
            cache_id = cache_mount_id(m)
            seed = None
            if src is not None:
                # As BuildKit, a seeded cache is its own cache (keyed by the seed too) and
                # the mount shows the selected directory of it: only that part is copied.
                root = stack.enter_context(self.worker.snapshots.read(src))
                seed = Path(rootpath.resolve(root, m.selector)) if m.selector else root
                if not seed.is_dir():
                    raise BuildError(f"cannot mount cache {m.dest}: {m.selector or '/'} is not "
                                     "a directory in the mount source")
                cache_id += f":{src.id}:{m.selector or '/'}"
            return CacheMount(target=m.dest, id=cache_id,
                              sharing=_SHARING.get(m.cache_opt.sharing, "shared"),
                              seed=seed, readonly=m.readonly)
        if m.mount_type == ops_pb2.MOUNT_TYPE_TMPFS:
            return TmpfsMount(target=m.dest, size=m.tmpfs_opt.size or None,
                              readonly=m.readonly)
        if m.mount_type == ops_pb2.MOUNT_TYPE_SECRET:
            o = m.secret_opt
            return SecretMount(id=o.id, target=m.dest, required=not o.optional,
                               uid=o.uid, gid=o.gid, mode=o.mode or 0o400)
        if m.mount_type == ops_pb2.MOUNT_TYPE_SSH:
            so = m.ssh_opt
            sock = self.worker.ssh_socket(ctx, so.id or "default")
            return SshMount(id=so.id or "default", target=m.dest or None, socket=sock,
                            required=not so.optional, uid=so.uid, gid=so.gid,
                            mode=so.mode or 0o600)
        raise BuildError(f"invalid exec op: unknown mount type {m.mount_type}")
