"""Where a stage (or a ``--from`` reference) gets its filesystem and config from:
a named build context, ``scratch``, or a registry image via the ImageResolver."""

from __future__ import annotations

from typing import Any, Protocol

from buildkit_py import llb
from buildkit_py.errors import BuildError, DockerfileError, UsageError
from buildkit_py.frontend.dockerfile.convert.dispatch_context import ConvertContext
from buildkit_py.frontend.dockerfile.convert.image_config import ImageConfig
from buildkit_py.frontend.dockerfile.convert.lint_checks import base_platform
from buildkit_py.frontend.dockerfile.convert.options import ResolvedImage
from buildkit_py.frontend.dockerfile.convert.remote_context import (
    is_remote_url,
    named_remote_context,
)
from buildkit_py.frontend.dockerfile.convert.stage_state import StageState
from buildkit_py.gostrings import go_quote
from buildkit_py.llb import ops_pb2
from buildkit_py.platforms import Platform
from buildkit_py.registry.reference import InvalidReferenceError, parse_reference


def _familiar(ref: str) -> list[str]:
    """Spellings a named context may use for an image: as written, familiar form
    (``alpine``, ``alpine:3.20``, ``me/app``) and fully qualified."""
    out = [ref]
    try:
        full = llb.normalize_image_ref(ref)
    except llb.LLBError:
        return out
    out.append(full)
    short = full
    for prefix in ("docker.io/library/", "docker.io/"):
        if short.startswith(prefix):
            short = short[len(prefix):]
            break
    out.append(short)
    if short.endswith(":latest"):
        out.append(short[: -len(":latest")])
    return out


def named_context(name: str, cx: ConvertContext) -> str | None:
    contexts = cx.opts.build_contexts
    if not contexts or name.lower() in ("scratch", "context"):
        return None
    for candidate in _familiar(name):
        if candidate in contexts:
            return contexts[candidate]
    return None


def _resolve_image(ref: str, platform: Platform, cx: ConvertContext) -> tuple[str, dict[str, Any]]:
    try:
        parse_reference(ref)  # docker's rules, worded as BuildKit words them
        normalized = llb.normalize_image_ref(ref)
    except (llb.LLBError, InvalidReferenceError) as exc:
        raise DockerfileError(
            f"failed to parse stage name {go_quote(ref)}: {exc.message}") from exc
    resolver = cx.opts.image_resolver
    if resolver is None:
        raise UsageError(
            f"cannot resolve image {normalized}: no image resolver was configured",
            hint="pass an ImageResolver in ConvertOptions.image_resolver")
    try:
        resolved = resolver.resolve(normalized, platform)
    except BuildError as exc:
        if exc.step is None:
            raise
        # BuildKit names the image as the Dockerfile wrote it first
        raise BuildError(f"{ref}: {exc.text()}", step=exc.step, hint=exc.hint) from exc
    return resolved.ref, dict(resolved.config)


class OCILayoutResolver(Protocol):
    """An ImageResolver that can also read OCI layout folders (the builder's can)."""

    def resolve_oci_layout(self, path: str, tag: str | None, digest: str | None,
                           platform: Platform, name: str) -> ResolvedImage: ...


def parse_oci_layout(value: str) -> tuple[str, str | None, str | None]:
    """``oci-layout://PATH[:TAG][@ALG:HEX]`` -> (path, tag, digest); a ``:`` counts as the
    tag separator only after the path's last ``/``."""
    rest = value[len("oci-layout://"):]
    digest = None
    head, at, tail = rest.rpartition("@")
    if at and ":" in tail:
        rest, digest = head, tail
    tag = None
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1:]
    if not rest or tag == "":
        raise UsageError(f"invalid oci-layout context {value!r}",
                         hint="use oci-layout://PATH[:TAG] or oci-layout://PATH@sha256:DIGEST")
    return rest, tag, digest


def _resolve_oci_layout(value: str, name: str, platform: Platform,
                        cx: ConvertContext) -> tuple[str, dict[str, Any]]:
    path, tag, digest = parse_oci_layout(value)
    resolver = cx.opts.image_resolver
    if resolver is None or not hasattr(resolver, "resolve_oci_layout"):
        raise UsageError(f"build context {name}={value}: this builder cannot read OCI layouts")
    layouts: OCILayoutResolver = resolver  # type: ignore[assignment]
    resolved = layouts.resolve_oci_layout(path, tag, digest, platform, name)
    return resolved.ref, dict(resolved.config)


def _is_empty_image(config: dict[str, Any]) -> bool:
    rootfs = config.get("rootfs") or {}
    if rootfs.get("diff_ids"):
        return False
    return all(h.get("empty_layer") for h in config.get("history") or [])


def _from_context(ds: StageState, value: str, name: str, platform: Platform,
                  cx: ConvertContext) -> None:
    if value.startswith("docker-image://"):
        ref, config = _resolve_image(value[len("docker-image://"):], platform, cx)
        ds.image = ImageConfig.from_base(config)
        ds.state = llb.image(ref, platform=_pb(platform))
        return
    if value.startswith("oci-layout://"):
        ref, config = _resolve_oci_layout(value, name, platform, cx)
        ds.image = ImageConfig.from_base(config)
        ds.state = llb.image(ref, platform=_pb(platform), description={
            llb.CUSTOM_NAME: f"[context {name}] {value}"})
        return
    if value.startswith("target:"):
        raise UsageError(f"build context {name}={value}: this kind of context is not supported",
                         hint="use docker-image://REF, oci-layout://PATH, a Git or HTTP(S) "
                              "URL, local:NAME or a directory")
    if is_remote_url(value) or value.startswith("ssh://"):
        ds.state = named_remote_context(name, value)
        ds.image = ImageConfig.empty(platform)
        return
    local_name = value[len("local:"):] if value.startswith("local:") else name
    ds.state = llb.local(local_name, shared_key=local_name,
                         exclude=cx.opts.context_ignores.get(local_name, ()),
                         session_id=cx.opts.session_id,
                         description=f"[context {name}] load from client")
    ds.image = ImageConfig.empty(platform)


def _pb(p: Platform) -> ops_pb2.Platform:
    return ops_pb2.Platform(os=p.os, architecture=p.architecture, variant=p.variant,
                                os_version=p.os_version)


def resolve_stage(ds: StageState, cx: ConvertContext) -> None:
    """Give a stage without a base stage its filesystem, image config and platform."""
    ds.resolved = True
    platform = ds.platform or cx.target_platform
    ds.platform = platform
    if ds.implicit:
        ds.dispatched = True  # nothing to run: the image/context is used as is
    context_value = named_context(ds.name, cx) if ds.name else None
    if context_value is None:
        context_value = named_context(ds.base_name, cx)
    if context_value is not None:
        _from_context(ds, context_value, ds.name or ds.base_name, platform, cx)
        if ds.name and named_context(ds.name, cx) is not None:
            # The whole stage is replaced by the context: nothing of it is built.
            ds.dispatched = True
            assert ds.image is not None
            ds.image.ensure_path()
            ds.scope = cx.build_args.stage_scope(cx.meta, ds.image.env())
        ds.state = ds.state.platform(_pb(platform))
        return
    if ds.base_name.lower() == "scratch":
        ds.state = llb.scratch().platform(_pb(platform))
        ds.image = ImageConfig.empty(platform)
        return
    ref, config = _resolve_image(ds.base_name, platform, cx)
    ds.image = ImageConfig.from_base(config)
    if _is_empty_image(config):
        ds.state = llb.scratch().platform(_pb(platform))
        return
    base_platform(ds.base_name, platform, config, ds.location, cx.lint)
    name = ds.namer.name(f"FROM {ref}", platform) if not ds.implicit else f"FROM {ref}"
    location = None
    if cx.source is not None and ds.location is not None and not ds.implicit:
        location = cx.source.location(ds.location.start_line, ds.location.end_line)
    ds.from_image = True
    description = {llb.CUSTOM_NAME: name}
    if ds.stage is not None:
        description[llb.DOCKERFILE_COMMAND] = ds.stage.from_.original
    ds.state = llb.image(ref, platform=_pb(platform), description=description,
                         location=location)
