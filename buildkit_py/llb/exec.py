"""Exec ops: run a command over a root filesystem plus extra mounts.

``State.run`` builds an ``ExecNode`` from the state's values; mount sources are any
``FsRef`` (a ``State``), so this module does not depend on ``State``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from buildkit_py.llb import ops_pb2
from buildkit_py.llb.errors import LLBError
from buildkit_py.llb.metadata import OpMeta
from buildkit_py.llb.node import FsRef, InputIndexer, OpNode, Output
from buildkit_py.llb.paths import join_path

_SHARING = {
    "shared": ops_pb2.CACHE_SHARING_SHARED,
    "private": ops_pb2.CACHE_SHARING_PRIVATE,
    "locked": ops_pb2.CACHE_SHARING_LOCKED,
}
_PROXY_KEYS = ("http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "all_proxy")


@dataclass(frozen=True, eq=False)
class Mount:
    """An extra mount of a run; build one with the ``*_mount`` helpers below."""

    target: str
    kind: ops_pb2.MountType = ops_pb2.MOUNT_TYPE_BIND
    source: FsRef | None = None
    selector: str = ""
    readonly: bool = False
    cache_id: str = ""
    sharing: ops_pb2.CacheSharingOpt = ops_pb2.CACHE_SHARING_SHARED
    secret_id: str = ""
    uid: int = 0
    gid: int = 0
    mode: int = 0
    optional: bool = False
    tmpfs_size: int = 0
    no_output: bool = False

    @property
    def has_output(self) -> bool:
        """Only writable bind mounts produce a result (cache/tmpfs/secret/ssh never do);
        ``no_output`` makes one scratch space whose writes are discarded."""
        return self.kind == ops_pb2.MOUNT_TYPE_BIND and not self.readonly and not self.no_output


def bind_mount(
    target: str, source: FsRef | None = None, *, selector: str = "", readonly: bool = False,
    no_output: bool = False,
) -> Mount:
    """Mount ``selector`` of ``source`` (None = empty dir) at ``target``; with
    ``no_output`` a writable mount's changes are thrown away (RUN --mount=...,rw)."""
    return Mount(target, source=source, selector=selector, readonly=readonly,
                 no_output=no_output)


def cache_mount(
    target: str,
    cache_id: str,
    *,
    sharing: str = "shared",
    source: FsRef | None = None,
    selector: str = "",
) -> Mount:
    """A persistent cache dir shared across builds by ``cache_id`` (seeded from ``source``)."""
    try:
        mode = _SHARING[sharing]
    except KeyError:
        raise LLBError(
            f"invalid cache sharing mode {sharing!r}", hint="use shared, private or locked"
        ) from None
    return Mount(
        target,
        kind=ops_pb2.MOUNT_TYPE_CACHE,
        source=source,
        selector=selector,
        cache_id=cache_id,
        sharing=mode,
    )


def tmpfs_mount(target: str, *, size: int = 0) -> Mount:
    """An in-memory tmpfs at ``target`` (``size`` bytes, 0 = runtime default)."""
    return Mount(target, kind=ops_pb2.MOUNT_TYPE_TMPFS, tmpfs_size=size)


def secret_mount(
    target: str,
    secret_id: str,
    *,
    uid: int = 0,
    gid: int = 0,
    mode: int = 0o400,
    optional: bool = False,
) -> Mount:
    """The client secret ``secret_id`` as a read-only file at ``target``."""
    return Mount(
        target,
        kind=ops_pb2.MOUNT_TYPE_SECRET,
        readonly=True,
        secret_id=secret_id,
        uid=uid,
        gid=gid,
        mode=mode,
        optional=optional,
    )


def ssh_mount(
    target: str,
    ssh_id: str = "default",
    *,
    uid: int = 0,
    gid: int = 0,
    mode: int = 0o600,
    optional: bool = False,
) -> Mount:
    """The client's SSH agent socket ``ssh_id`` at ``target``."""
    return Mount(
        target,
        kind=ops_pb2.MOUNT_TYPE_SSH,
        readonly=True,
        secret_id=ssh_id,
        uid=uid,
        gid=gid,
        mode=mode,
        optional=optional,
    )


@dataclass(frozen=True)
class SecretEnv:
    """Expose client secret ``secret_id`` as environment variable ``name``."""

    secret_id: str
    name: str
    optional: bool = False


class ExecNode(OpNode):
    """A command run over ``root`` (mounted at ``/``, its dir the working dir) and extra
    mounts; the other values are the running state's."""

    def __init__(
        self,
        root: FsRef,
        args: Sequence[str],
        mounts: Sequence[Mount],
        *,
        platform: ops_pb2.Platform | None,
        env: Sequence[str],
        user: str,
        hostname: str,
        extra_hosts: Sequence[tuple[str, str]],
        network: ops_pb2.NetMode,
        security: ops_pb2.SecurityMode,
        secret_env: Sequence[SecretEnv] = (),
        proxy_env: Mapping[str, str] | None = None,
        valid_exit_codes: Sequence[int] = (),
        ulimits: Sequence[tuple[str, int, int]] = (),
        cdi_devices: Sequence[tuple[str, bool]] = (),
        meta: OpMeta,
    ) -> None:
        super().__init__(platform, meta)
        self.args = list(args)
        self.env = list(env)
        self.cwd = root.cwd
        self.user = user
        self.hostname = hostname
        self.extra_hosts = list(extra_hosts)
        self.network = network
        self.security = security
        self.secret_env = list(secret_env)
        self.valid_exit_codes = list(valid_exit_codes)
        self.ulimits = list(ulimits)
        self.cdi_devices = list(cdi_devices)
        self.proxy_env = dict(proxy_env or {})
        bad = set(self.proxy_env) - set(_PROXY_KEYS)
        if bad:
            raise LLBError(f"unknown proxy variable(s): {', '.join(sorted(bad))}")
        resolved = [Mount("/", source=root)]
        seen = {"/"}
        for m in mounts:
            target = mount_target(self.cwd, m.target)
            if target in seen:
                raise LLBError(f"two mounts at {target}")
            seen.add(target)
            resolved.append(m if target == m.target else _retarget(m, target))
        # Parents before children so the runtime mounts /a before /a/b; "/" sorts first.
        resolved.sort(key=lambda m: m.target)
        self.mounts = resolved
        self.outputs: dict[str, int] = {}
        for m in resolved:
            if m.has_output:
                self.outputs[m.target] = len(self.outputs)

    def inputs(self) -> Sequence[Output]:
        return [m.source.output for m in self.mounts if m.source and m.source.output]

    def fill(self, op: ops_pb2.Op, idx: InputIndexer) -> None:
        ex = op.exec
        meta = ex.meta
        meta.args.extend(self.args)
        meta.env.extend(self.env)
        meta.cwd = self.cwd
        meta.user = self.user
        meta.hostname = self.hostname
        for host, ip in self.extra_hosts:
            meta.extra_hosts.add(host=host, ip=ip)
        meta.valid_exit_codes.extend(self.valid_exit_codes)
        for name, soft, hard in self.ulimits:
            meta.ulimit.add(name=name, soft=soft, hard=hard)
        if self.proxy_env:
            meta.proxy_env.CopyFrom(ops_pb2.ProxyEnv(**self.proxy_env))
        ex.network = self.network
        ex.security = self.security
        for name, optional in self.cdi_devices:
            ex.cdi_devices.add(name=name, optional=optional)
        for se in self.secret_env:
            ex.secretenv.add(id=se.secret_id, name=se.name, optional=se.optional)
        for m in self.mounts:
            pm = ex.mounts.add(
                input=idx.input(m.source.output if m.source else None),
                selector=m.selector,
                dest=m.target,
                output=self.outputs.get(m.target, -1),
                readonly=m.readonly,
                mount_type=m.kind,
            )
            if m.kind == ops_pb2.MOUNT_TYPE_CACHE:
                pm.cache_opt.CopyFrom(ops_pb2.CacheOpt(id=m.cache_id, sharing=m.sharing))
            elif m.kind == ops_pb2.MOUNT_TYPE_TMPFS:
                pm.tmpfs_opt.CopyFrom(ops_pb2.TmpfsOpt(size=m.tmpfs_size))
            elif m.kind == ops_pb2.MOUNT_TYPE_SECRET:
                pm.secret_opt.CopyFrom(ops_pb2.SecretOpt(
                    id=m.secret_id, uid=m.uid, gid=m.gid, mode=m.mode, optional=m.optional))
            elif m.kind == ops_pb2.MOUNT_TYPE_SSH:
                pm.ssh_opt.CopyFrom(ops_pb2.SSHOpt(
                    id=m.secret_id, uid=m.uid, gid=m.gid, mode=m.mode, optional=m.optional))


def mount_target(cwd: str, target: str) -> str:
    """A mount's target as an absolute path without a trailing slash."""
    if not target:
        raise LLBError("mount target must not be empty")
    return join_path(cwd, target).rstrip("/") or "/"


def _retarget(m: Mount, target: str) -> Mount:
    return replace(m, target=target)
