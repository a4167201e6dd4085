"""Shared helpers for the converter tests: an in-test ImageResolver and graph queries."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from buildkit_py import llb
from buildkit_py.frontend.dockerfile import load_dockerfile
from buildkit_py.frontend.dockerfile.convert import (
    ConvertOptions,
    ConvertResult,
    ResolvedImage,
    convert,
)
from buildkit_py.platforms import Platform, parse_platform

AMD64 = parse_platform("linux/amd64")
ARM64 = parse_platform("linux/arm64")
DIGEST = "sha256:" + "ab" * 32


def image_config(
    platform: Platform | None = None,
    *,
    env: list[str] | None = None,
    layers: int = 1,
    **config: Any,
) -> dict[str, Any]:
    """An OCI image config as a registry would return it."""
    p = platform or AMD64
    return {
        "architecture": p.architecture,
        "os": p.os,
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": env if env is not None else ["PATH=/usr/bin:/bin"], **config},
        "rootfs": {"type": "layers",
                   "diff_ids": [f"sha256:{i:064x}" for i in range(1, layers + 1)]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"base layer {i}"}
                    for i in range(layers)],
    }


class FakeResolver:
    """Image metadata for tests: configs by familiar name; records every lookup."""

    def __init__(self, configs: dict[str, dict[str, Any]] | None = None) -> None:
        self.configs = configs or {}
        self.calls: list[tuple[str, Platform]] = []

    def resolve(self, ref: str, platform: Platform) -> ResolvedImage:
        self.calls.append((ref, platform))
        name = ref.removeprefix("docker.io/library/").removeprefix("docker.io/")
        short = name.removesuffix(":latest")
        config = self.configs.get(short) or self.configs.get(name)
        if config is None:
            config = image_config(platform)
        config = copy.deepcopy(config)
        config.setdefault("architecture", platform.architecture)
        # The digest depends on the platform, as a real index lookup would.
        digest = hashlib.sha256(f"{ref}|{platform.format()}".encode()).hexdigest()
        pinned = f"{ref}@sha256:{digest}"
        return ResolvedImage(pinned, config)


def build(text: str, **kwargs: Any) -> ConvertResult:
    """Convert Dockerfile ``text`` (a FakeResolver unless one is given)."""
    kwargs.setdefault("image_resolver", FakeResolver())
    kwargs.setdefault("target_platform", AMD64)
    kwargs.setdefault("build_platform", AMD64)
    return convert(load_dockerfile(text.encode()), ConvertOptions(**kwargs))


def vertices(res: ConvertResult, kind: str | None = None) -> list[llb.Vertex]:
    return [v for v in res.definition.vertices() if kind is None or v.kind == kind]


def execs(res: ConvertResult) -> list[llb.Vertex]:
    return vertices(res, "exec")


def exec_with(res: ConvertResult, needle: str) -> llb.Vertex:
    """The exec whose last argument contains ``needle``."""
    found = [v for v in execs(res) if needle in v.op.exec.meta.args[-1]]
    assert len(found) == 1, [list(v.op.exec.meta.args) for v in execs(res)]
    return found[0]


def names(res: ConvertResult) -> list[str]:
    return [v.name for v in res.definition.vertices() if v.name]


def history(res: ConvertResult) -> list[tuple[str, bool]]:
    """(created_by, empty_layer) of the entries the Dockerfile added."""
    return [(h["created_by"], bool(h.get("empty_layer")))
            for h in res.image_config.get("history", [])
            if h.get("comment") == "buildkit.dockerfile.v0"]


def env_of(v: llb.Vertex) -> dict[str, str]:
    return dict(e.split("=", 1) for e in v.op.exec.meta.env)
