"""Inputs and outputs of :func:`~buildkit_py.frontend.dockerfile.convert.convert`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from buildkit_py.errors import SourceLocation
from buildkit_py.frontend.dockerfile.lint import LintWarning
from buildkit_py.platforms import Platform

if TYPE_CHECKING:
    from buildkit_py import llb


@dataclass(frozen=True)
class ResolvedImage:
    """An image reference pinned to a digest, with its OCI image config JSON."""

    ref: str  # normalised and pinned: "docker.io/library/alpine:3.20@sha256:..."
    config: dict[str, Any]


class ImageResolver(Protocol):
    """Looks up image metadata (the registry client implements this)."""

    def resolve(self, ref: str, platform: Platform) -> ResolvedImage: ...


@dataclass
class ConvertOptions:
    """How to compile a Dockerfile; one call per target platform."""

    target: str | None = None
    target_platform: Platform | None = None  # None = host
    build_platform: Platform | None = None  # None = host
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # applied to the final image only
    # name -> "docker-image://REF" | "local:NAME" | "oci-layout://..." | a Git or HTTP(S)
    # URL | a path (-> local:NAME)
    build_contexts: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    no_cache_filter: list[str] = field(default_factory=list)
    network: str = "default"
    extra_hosts: list[tuple[str, str]] = field(default_factory=list)  # /etc/hosts of RUNs
    shm_size: int = 0  # bytes of the tmpfs at /dev/shm of every RUN (0: the runtime's 64 MiB)
    ulimits: list[tuple[str, int, int]] = field(default_factory=list)  # (name, soft, hard)
    context_name: str = "context"
    ignore_patterns: list[str] = field(default_factory=list)
    # A remote main context (a Git checkout, an HTTP download: frontend/dockerfile/
    # convert/remote_context.py), used as it is; None: the client's local ``context_name``.
    main_context: llb.State | None = None
    # Exclude patterns of named local contexts (each one's own .dockerignore), by local name
    context_ignores: dict[str, list[str]] = field(default_factory=dict)
    source_date_epoch: int | None = None
    image_resolver: ImageResolver | None = None
    dockerfile_name: str = "Dockerfile"
    # Prefix vertex names with the platform ("[linux/arm64 build 2/4] ..."), as BuildKit
    # does when several platforms are built at once.
    multi_platform: bool = False
    # Ties the build's local sources to one client session: two concurrent builds of the
    # same Dockerfile from different clients must not share each other's files.
    session_id: str = ""
    # Lint: convert every stage, not only those the target needs (``--call check``
    # without --target), and whether to keep findings (only the first platform of a
    # multi-platform build reports them, as in BuildKit).
    all_stages: bool = False
    lint_report: bool = True


@dataclass(frozen=True)
class ConvertWarning:
    """A lint-style warning found while converting."""

    rule: str  # e.g. "UnusedBuildArgs"
    message: str
    location: SourceLocation | None = None


@dataclass
class ConvertResult:
    """The LLB of the target stage plus the image config built alongside it."""

    definition: llb.Definition
    image_config: dict[str, Any]
    platform: Platform
    stage_name: str | None
    warnings: list[ConvertWarning] = field(default_factory=list)
    lint: list[LintWarning] = field(default_factory=list)  # BuildKit's lint rules that fired
    # the target stage's base image config (None for scratch), for rewrite-timestamp
    base_image: dict[str, Any] | None = None
