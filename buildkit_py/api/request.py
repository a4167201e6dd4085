"""What ``bkpy build`` asks a builder for, independent of embedded or remote builders."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from buildkit_py.api.outputs import OutputSpec
from buildkit_py.errors import UsageError
from buildkit_py.units import parse_csv_kv


@dataclass
class SecretSpec:
    id: str
    src: str | None = None
    env: str | None = None

    def read(self) -> bytes:
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise UsageError(f"secret {self.id}: environment variable {self.env} is not set")
            return value.encode()
        assert self.src is not None
        try:
            return Path(self.src).expanduser().read_bytes()
        except OSError as err:
            raise UsageError(f"secret {self.id}: cannot read {self.src}: {err.strerror}") from None


def parse_secret(spec: str) -> SecretSpec:
    """``id=ID[,src=PATH|,env=VAR]`` (also ``type=file|env``, ``source=``), like buildx."""
    attrs = parse_csv_kv(spec, "--secret")
    sid = attrs.get("id", "")
    src = attrs.get("src") or attrs.get("source")
    env = attrs.get("env")
    kind = attrs.get("type")
    if kind == "env" and env is None:
        env = src or sid
        src = None
    if not sid:
        raise UsageError(f"--secret {spec!r}: missing id=")
    if src is None and env is None:
        # buildx: a secret with only an id is read from the env var of that name if set,
        # else from a file of that name
        if os.environ.get(sid) is not None and kind != "file":
            env = sid
        else:
            src = sid
    return SecretSpec(sid, src=src, env=env)


@dataclass
class SSHSpec:
    id: str
    paths: list[str]


def parse_ssh(spec: str) -> SSHSpec:
    """``default`` (agent from $SSH_AUTH_SOCK) or ``ID=SOCKET|KEY[,...]``."""
    sid, _, rest = spec.partition("=")
    paths = [p for p in rest.split(",") if p] if rest else []
    if not paths:
        sock = os.environ.get("SSH_AUTH_SOCK")
        if not sock:
            raise UsageError(f"--ssh {spec}: no socket given and SSH_AUTH_SOCK is not set")
        paths = [sock]
    return SSHSpec(sid or "default", paths)


@dataclass
class BuildRequest:
    context: Path | None  # None: empty context (Dockerfile from stdin)
    dockerfile: Path | None
    dockerfile_data: bytes
    tags: list[str] = field(default_factory=list)
    target: str | None = None
    platforms: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    build_contexts: dict[str, str] = field(default_factory=dict)
    secrets: list[SecretSpec] = field(default_factory=list)
    ssh: list[SSHSpec] = field(default_factory=list)
    no_cache: bool = False
    no_cache_filter: list[str] = field(default_factory=list)
    pull: bool = False
    outputs: list[OutputSpec] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    network: str = "default"
    extra_hosts: list[tuple[str, str]] = field(default_factory=list)  # --add-host (name, ip)
    shm_size: int = 0  # --shm-size in bytes (0: the runtime's 64 MiB /dev/shm)
    ulimits: list[tuple[str, int, int]] = field(default_factory=list)  # --ulimit (name, soft, hard)
    # Entitlements the build may use (buildx's --allow): RUN --network=host needs
    # "network.host", RUN --security=insecure "security.insecure".
    entitlements: list[str] = field(default_factory=list)
    cache_to: list[dict[str, str]] = field(default_factory=list)
    cache_from: list[dict[str, str]] = field(default_factory=list)
    metadata_file: Path | None = None
    iidfile: Path | None = None
    # A remote build context (a Git or HTTP(S) URL) that the builder fetches itself;
    # ``context`` is then None and nothing is lent from this machine.
    context_url: str | None = None
    # The Dockerfile's path inside the remote context (``-f``, default ``Dockerfile``),
    # read by the builder; None: ``dockerfile_data`` holds it (stdin, a local ``-f``).
    dockerfile_in_context: str | None = None
    # "build", or "check": only lint the Dockerfile (buildx's --call check); the result
    # comes back as BuildKit's lint JSON in the outcome's metadata ("result.json").
    call: str = "build"
    # Put the build's warnings into the metadata as buildx.build.warnings (buildx does so
    # when BUILDX_METADATA_WARNINGS is set).
    metadata_warnings: bool = False
    # The step debugger (`bkpy debug`, `bkpy build --invoke`): the command to open on the
    # caller's terminal in the container of a RUN step that fails, and with debug_on
    # "always" also in a container of the result when the build succeeds. Embedded only.
    debug_shell: list[str] | None = None
    debug_on: str = "error"
    # What BuildKit would count for sending the Dockerfile ("transferring dockerfile:
    # 338B"), measured where the file is (a remote client's machine); None: measure
    # ``dockerfile`` here.
    dockerfile_sent: int | None = None

    @property
    def dockerfile_name(self) -> str:
        """The Dockerfile's name for messages and source locations."""
        if self.dockerfile_in_context is not None:
            return self.dockerfile_in_context
        return self.dockerfile.name if self.dockerfile else "Dockerfile"
