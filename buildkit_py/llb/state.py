"""``State``: an immutable handle on a filesystem result plus the values a Dockerfile
stage carries (env, working dir, user, platform, network), like BuildKit's ``llb.State``.

Every method returns a new State; graph-building calls (``run``, ``file``) add nodes.
State sits above the op builders it calls (exec, fileop, marshal): those see a state
only as an ``FsRef`` and never import this module.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import cast

from buildkit_py.llb import ops_pb2
from buildkit_py.llb.definition import Definition
from buildkit_py.llb.errors import LLBError
from buildkit_py.llb.exec import ExecNode, Mount, SecretEnv, mount_target
from buildkit_py.llb.fileop import FileAction, FileNode
from buildkit_py.llb.marshal import marshal_output
from buildkit_py.llb.metadata import Location, ProgressGroup, make_meta
from buildkit_py.llb.node import Output
from buildkit_py.llb.paths import join_path
from buildkit_py.llb.platform import to_platform
from buildkit_py.platforms import Platform

_NETWORKS = {
    "default": ops_pb2.NET_MODE_UNSET,
    "sandbox": ops_pb2.NET_MODE_UNSET,
    "host": ops_pb2.NET_MODE_HOST,
    "none": ops_pb2.NET_MODE_NONE,
}
_SECURITY = {"sandbox": ops_pb2.SECURITY_MODE_SANDBOX, "insecure": ops_pb2.SECURITY_MODE_INSECURE}


def network_mode(mode: str | int) -> ops_pb2.NetMode:
    """Map ``default|host|none`` (or a NetMode value) to a NetMode."""
    if isinstance(mode, int):
        if mode not in ops_pb2.NetMode.values():
            raise LLBError(f"invalid network mode {mode}")
        return cast(ops_pb2.NetMode, mode)
    try:
        return _NETWORKS[mode]
    except KeyError:
        raise LLBError(f"invalid network mode {mode!r}", hint="use default, host or none") from None


def security_mode(mode: str | int) -> ops_pb2.SecurityMode:
    """Map ``sandbox|insecure`` (or a SecurityMode value) to a SecurityMode."""
    if isinstance(mode, int):
        if mode not in ops_pb2.SecurityMode.values():
            raise LLBError(f"invalid security mode {mode}")
        return cast(ops_pb2.SecurityMode, mode)
    try:
        return _SECURITY[mode]
    except KeyError:
        raise LLBError(f"invalid security mode {mode!r}", hint="use sandbox or insecure") from None


@dataclass(frozen=True, eq=False)
class State:
    """A filesystem result (None = scratch) and the values later ops inherit."""

    output: Output | None = None
    env: tuple[tuple[str, str], ...] = ()
    cwd: str = "/"
    username: str = ""
    plat: ops_pb2.Platform | None = None
    net: ops_pb2.NetMode = ops_pb2.NET_MODE_UNSET
    sec: ops_pb2.SecurityMode = ops_pb2.SECURITY_MODE_SANDBOX
    host_name: str = ""
    extra_hosts: tuple[tuple[str, str], ...] = ()
    values: tuple[tuple[str, object], ...] = ()

    # ------------------------------------------------------------ carried values

    @property
    def is_scratch(self) -> bool:
        """True when the filesystem is empty."""
        return self.output is None

    def with_output(self, output: Output | None) -> State:
        """This state's values on another filesystem result."""
        return replace(self, output=output)

    def add_env(self, key: str, value: str) -> State:
        """Set env var ``key`` (replacing in place keeps the original order)."""
        if not key or "=" in key:
            raise LLBError(f"invalid environment variable name {key!r}")
        env = list(self.env)
        for i, (k, _) in enumerate(env):
            if k == key:
                env[i] = (key, value)
                break
        else:
            env.append((key, value))
        return replace(self, env=tuple(env))

    def del_env(self, key: str) -> State:
        """Remove env var ``key``."""
        return replace(self, env=tuple((k, v) for k, v in self.env if k != key))

    def get_env(self, key: str) -> str | None:
        """Value of env var ``key`` or None."""
        for k, v in self.env:
            if k == key:
                return v
        return None

    def env_list(self) -> list[str]:
        """The environment as ``KEY=VALUE`` strings in order."""
        return [f"{k}={v}" for k, v in self.env]

    def dir(self, path: str) -> State:
        """Set the working directory; a relative path is resolved against the current one."""
        return replace(self, cwd=join_path(self.cwd, path).rstrip("/") or "/")

    def get_dir(self) -> str:
        """The working directory (``/`` by default)."""
        return self.cwd

    def user(self, user: str) -> State:
        """Set the user (``name``, ``uid``, ``name:group``...) later RUNs execute as."""
        return replace(self, username=user)

    def get_user(self) -> str:
        """The user, empty meaning root."""
        return self.username

    def platform(self, platform: str | Platform | ops_pb2.Platform) -> State:
        """Set the platform later ops are built for."""
        return replace(self, plat=to_platform(platform))

    def get_platform(self) -> ops_pb2.Platform | None:
        """A copy of the platform, or None for the marshal-time default."""
        return to_platform(self.plat) if self.plat is not None else None

    def network(self, mode: str | int) -> State:
        """Set the network mode (``default``, ``host``, ``none``) of later RUNs."""
        return replace(self, net=network_mode(mode))

    def get_network(self) -> ops_pb2.NetMode:
        """The network mode."""
        return self.net

    def security(self, mode: str | int) -> State:
        """Set the security mode (``sandbox``, ``insecure``) of later RUNs."""
        return replace(self, sec=security_mode(mode))

    def get_security(self) -> ops_pb2.SecurityMode:
        """The security mode."""
        return self.sec

    def hostname(self, name: str) -> State:
        """Set the hostname later RUNs see."""
        return replace(self, host_name=name)

    def get_hostname(self) -> str:
        """The hostname, empty for the runtime default."""
        return self.host_name

    def add_extra_host(self, host: str, ip: str) -> State:
        """Add a ``host -> ip`` entry to /etc/hosts of later RUNs."""
        return replace(self, extra_hosts=(*self.extra_hosts, (host, ip)))

    def with_value(self, key: str, value: object) -> State:
        """Attach an arbitrary value for a caller's own bookkeeping (not marshalled)."""
        return replace(self, values=(*((k, v) for k, v in self.values if k != key), (key, value)))

    def get_value(self, key: str, default: object = None) -> object:
        """A value set with :meth:`with_value`."""
        for k, v in self.values:
            if k == key:
                return v
        return default

    # ------------------------------------------------------------ graph building

    def run(
        self,
        args: Sequence[str] | str,
        *,
        env: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        cwd: str | None = None,
        user: str | None = None,
        mounts: Sequence[Mount] = (),
        network: str | int | None = None,
        security: str | int | None = None,
        hostname: str | None = None,
        extra_hosts: Sequence[tuple[str, str]] = (),
        secret_env: Sequence[SecretEnv] = (),
        proxy_env: Mapping[str, str] | None = None,
        valid_exit_codes: Sequence[int] = (),
        ulimits: Sequence[tuple[str, int, int]] = (),
        cdi_devices: Sequence[tuple[str, bool]] = (),
        description: str | Mapping[str, str] | None = None,
        ignore_cache: bool = False,
        progress_group: ProgressGroup | None = None,
        location: Location | Sequence[Location] | None = None,
    ) -> ExecState:
        """Run ``args`` on this filesystem; returns an ExecState (``.root()``, ``.get_mount()``).

        ``args`` as a string is split shell-style; env/cwd/user/network/... override the
        state's values for this run only. ``ulimits`` are ``(name, soft, hard)`` resource
        limits (``nofile``, ``stack``...; -1 unlimited) replacing the runtime's defaults;
        ``cdi_devices`` are ``(name, optional)`` CDI devices the process gets.
        """
        argv = shlex.split(args) if isinstance(args, str) else list(args)
        if not argv:
            raise LLBError("run needs a command")
        st = self
        if env is not None:
            for k, v in env.items() if isinstance(env, Mapping) else env:
                st = st.add_env(k, v)
        if cwd is not None:
            st = st.dir(cwd)
        if user is not None:
            st = st.user(user)
        if network is not None:
            st = st.network(network)
        if security is not None:
            st = st.security(security)
        if hostname is not None:
            st = st.hostname(hostname)
        for host, ip in extra_hosts:
            st = st.add_extra_host(host, ip)
        node = ExecNode(
            st,
            argv,
            mounts,
            platform=st.plat,
            env=st.env_list(),
            user=st.username,
            hostname=st.host_name,
            extra_hosts=st.extra_hosts,
            network=st.net,
            security=st.sec,
            secret_env=secret_env,
            proxy_env=proxy_env,
            valid_exit_codes=valid_exit_codes,
            ulimits=ulimits,
            cdi_devices=cdi_devices,
            meta=make_meta(description, ignore_cache, progress_group, location),
        )
        return ExecState(st, node)

    def file(
        self,
        action: FileAction,
        *,
        description: str | Mapping[str, str] | None = None,
        ignore_cache: bool = False,
        progress_group: ProgressGroup | None = None,
        location: Location | Sequence[Location] | None = None,
    ) -> State:
        """Apply a chain of file actions (``mkdir(...).copy(...)``) to this filesystem."""
        node = FileNode(self, action, platform=self.plat,
                        meta=make_meta(description, ignore_cache, progress_group, location))
        return self.with_output(Output(node, 0))

    def marshal(self, platform: str | Platform | ops_pb2.Platform | None = None) -> Definition:
        """Serialise the graph reaching this state into a validated Definition.

        Ops built without a platform get ``platform``, else this state's, else the host's.
        """
        if platform is None:
            plat = self.plat
        else:
            plat = to_platform(platform)
        return marshal_output(self.output, plat)


class ExecState:
    """The result of ``State.run``: the new root filesystem and writable mounts."""

    def __init__(self, state: State, node: ExecNode) -> None:
        self._state = state
        self.node = node

    def root(self) -> State:
        """The root filesystem after the command, with the run's state values."""
        return self._state.with_output(Output(self.node, self.node.outputs["/"]))

    def get_mount(self, target: str) -> State:
        """The contents of the writable bind mount at ``target`` after the command."""
        resolved = mount_target(self.node.cwd, target)
        if resolved not in self.node.outputs:
            raise LLBError(f"run has no writable mount at {resolved}")
        return self._state.with_output(Output(self.node, self.node.outputs[resolved]))


def scratch() -> State:
    """An empty filesystem."""
    return State()
