"""``RUN --mount`` specs and their host-side preparation into OCI mount entries.

The caller (solver) resolves what it owns before the exec: a bind source is a host directory
(a mounted snapshot of a stage, image or the context; a throwaway writable copy when ``rw``),
a cache seed is a host directory, secrets come from a :data:`SecretStore` callback and an ssh
mount names the caller's agent socket. The executor owns everything else: cache directories
and their locks, secret files in a private tmpfs directory, the forwarded agent socket.
"""

from __future__ import annotations

import os
import posixpath
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildkit_py import rootpath
from buildkit_py.errors import BuildError
from buildkit_py.executor.cache_mounts import CacheMountManager
from buildkit_py.executor.ssh_proxy import SocketForwarder

# Looks up a secret by id: its bytes, or None when the client has no such secret.
SecretStore = Callable[[str], bytes | None]

SSH_AGENT_TARGET = "/run/buildkit/ssh_agent.{}"
SECRETS_DIR = "/run/secrets"


@dataclass(frozen=True)
class BindMount:
    """A host directory (or file) at ``target``; ``selector`` picks a subpath of ``source``."""

    target: str
    source: Path
    selector: str = ""
    readonly: bool = True


@dataclass(frozen=True)
class CacheMount:
    """A persistent cache directory keyed by ``id`` (default: the cleaned target); a new one
    starts as a copy of ``seed`` (owner and mode included), else empty with ``uid``, ``gid``
    and ``mode``."""

    target: str
    id: str | None = None
    sharing: str = "shared"
    seed: Path | None = None
    uid: int = 0
    gid: int = 0
    mode: int = 0o755
    readonly: bool = False


@dataclass(frozen=True)
class TmpfsMount:
    target: str
    size: int | None = None
    readonly: bool = False


@dataclass(frozen=True)
class SecretMount:
    """A secret as a file (``target``, default ``/run/secrets/<id>``) and/or an env var."""

    id: str
    target: str | None = None
    env: str | None = None
    required: bool = False
    uid: int = 0
    gid: int = 0
    mode: int = 0o400


@dataclass(frozen=True)
class SshMount:
    """An ssh agent socket; ``socket`` is the caller's agent socket (None: not forwarded)."""

    id: str = "default"
    target: str | None = None
    socket: Path | None = None
    required: bool = False
    uid: int = 0
    gid: int = 0
    mode: int = 0o600


Mount = BindMount | CacheMount | TmpfsMount | SecretMount | SshMount


@dataclass
class PreparedMounts:
    oci: list[dict[str, Any]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def _abs_target(target: str, cwd: str) -> str:
    path = rootpath.clean(posixpath.join(cwd, target))
    if path == "/":
        raise BuildError(f"invalid mount target {target!r}: cannot mount over /")
    return path


def _bind(source: Path, dest: str, readonly: bool, *extra: str) -> dict[str, Any]:
    return {
        "destination": dest,
        "type": "bind",
        "source": str(source),
        "options": ["rbind", "ro" if readonly else "rw", *extra],
    }


class MountPreparer:
    """Turns mount specs into OCI mounts; resources are released through ``stack``."""

    def __init__(
        self,
        *,
        cache: CacheMountManager,
        private_dir: Callable[[], Path],
        stack: ExitStack,
        secrets: SecretStore | None,
        cancel: threading.Event | None,
        args: list[str] | None = None,
    ) -> None:
        self._cache = cache
        self._args = args or []  # the process, named by its cache mounts' records
        self._private_dir = private_dir
        self._stack = stack
        self._secrets = secrets
        self._cancel = cancel
        self._ssh_count = 0
        self._caches: dict[str, Path] = {}

    def prepare(self, mounts: list[Mount], cwd: str, env_names: set[str]) -> PreparedMounts:
        out = PreparedMounts()
        for m in mounts:
            if isinstance(m, BindMount):
                out.oci.append(self._bind_mount(m, cwd))
            elif isinstance(m, CacheMount):
                out.oci.append(self._cache_mount(m, cwd))
            elif isinstance(m, TmpfsMount):
                opts = ["nosuid", "ro"] if m.readonly else ["nosuid"]  # BuildKit's options
                if m.size:
                    opts.append(f"size={m.size}")
                dest = _abs_target(m.target, cwd)
                out.oci.append(
                    {"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": opts}
                )
            elif isinstance(m, SecretMount):
                self._secret_mount(m, cwd, out)
            elif isinstance(m, SshMount):
                self._ssh_mount(m, cwd, out, env_names)
            else:
                raise TypeError(f"unknown mount spec {m!r}")
        # Parents before children, otherwise a later parent mount would hide a child mount.
        out.oci.sort(key=lambda e: rootpath.clean(e["destination"]).count("/"))
        return out

    def _bind_mount(self, m: BindMount, cwd: str) -> dict[str, Any]:
        dest = _abs_target(m.target, cwd)
        source = Path(rootpath.resolve(m.source, m.selector)) if m.selector else m.source
        if not os.path.lexists(source):
            where = f"{m.selector!r} in the mount source" if m.selector else str(m.source)
            raise BuildError(f"cannot mount {dest}: {where} does not exist")
        return _bind(source, dest, m.readonly)

    def _cache_mount(self, m: CacheMount, cwd: str) -> dict[str, Any]:
        dest = _abs_target(m.target, cwd)
        key = m.id or dest
        path = self._caches.get(key)
        if path is None:
            lease = self._cache.acquire(
                key,
                sharing=m.sharing,
                seed=m.seed,
                uid=m.uid,
                gid=m.gid,
                mode=m.mode,
                cancel=self._cancel,
                description=f"cached mount {dest} from exec {' '.join(self._args)} "
                            f'with id "{key}"',
            )
            self._stack.callback(lease.release)
            # One step's mounts of a cache id share one instance, whatever their sharing
            # mode (as in BuildKit; a second private or locked lease would not).
            path = self._caches[key] = lease.path
        return _bind(path, dest, m.readonly)

    def _secret_mount(self, m: SecretMount, cwd: str, out: PreparedMounts) -> None:
        value = self._secrets(m.id) if self._secrets is not None else None
        if value is None:
            if m.required:
                raise BuildError(
                    f"secret {m.id}: not found",
                    hint=f"pass it with --secret id={m.id},src=PATH (or env=VAR)",
                )
            if m.env:  # BuildKit still sets an optional secret's variable, empty
                out.env[m.env] = ""
            return
        if m.env:
            out.env[m.env] = value.decode("utf-8", "replace")
        if m.env and not m.target:
            return
        dest = _abs_target(m.target or posixpath.join(SECRETS_DIR, m.id), cwd)
        directory = self._private_dir()
        path = directory / f"secret-{len(os.listdir(directory))}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(value)
            os.fchown(fh.fileno(), m.uid, m.gid)
            os.fchmod(fh.fileno(), m.mode)
        out.oci.append(_bind(path, dest, True, "nosuid", "nodev", "noexec"))

    def _ssh_mount(
        self, m: SshMount, cwd: str, out: PreparedMounts, env_names: set[str]
    ) -> None:
        index = self._ssh_count
        self._ssh_count += 1
        if m.socket is None or not os.path.exists(m.socket):
            if m.required:
                raise BuildError(
                    f'no SSH key "{m.id}" forwarded from the client',
                    hint=f"pass it with --ssh {m.id}[=SOCKET]",
                )
            return
        default_target = m.target is None
        dest = _abs_target(m.target or SSH_AGENT_TARGET.format(index), cwd)
        listen = self._private_dir() / f"ssh-{index}.sock"
        forwarder = SocketForwarder(listen, m.socket, uid=m.uid, gid=m.gid, mode=m.mode)
        self._stack.callback(forwarder.close)
        out.oci.append(_bind(listen, dest, False))
        if default_target and "SSH_AUTH_SOCK" not in env_names and "SSH_AUTH_SOCK" not in out.env:
            out.env["SSH_AUTH_SOCK"] = dest

