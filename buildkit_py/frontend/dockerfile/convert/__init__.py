"""Dockerfile -> LLB conversion with the image config built alongside.

``convert(load_dockerfile(data), ConvertOptions(...))`` returns a :class:`ConvertResult`:
the target stage's ``llb.Definition``, its OCI image config (without ``rootfs`` and
``created``, which the exporter fills in), the platform and lint-style warnings.
Call it once per target platform; ops that do not depend on the platform (the local
context, ``FROM --platform=$BUILDPLATFORM`` stages) get identical digests.

Modules: ``converter`` (orchestration), ``stages``/``stage_state`` (the stage graph,
reachability, cycles), ``base_images`` (FROM resolution: named contexts, scratch,
images), ``dispatch`` routing to ``dispatch_meta`` (config-only instructions and
WORKDIR), ``dispatch_run`` + ``run_mounts`` (RUN), ``dispatch_copy`` + ``sources``
(COPY/ADD, git/URL detection), ``image_config`` (config + history), ``names`` (vertex
names), ``context`` (the main build context with follow paths), ``remote_context``
(Git and HTTP(S) contexts as LLB), ``onbuild``, ``values``
(EXPOSE/STOPSIGNAL validation), ``errors`` (locations on errors), ``dispatch_context``
(what handlers share).
"""

from buildkit_py.frontend.dockerfile.convert.converter import convert, make_linter
from buildkit_py.frontend.dockerfile.convert.options import (
    ConvertOptions,
    ConvertResult,
    ConvertWarning,
    ImageResolver,
    ResolvedImage,
)

__all__ = [
    "ConvertOptions",
    "ConvertResult",
    "ConvertWarning",
    "ImageResolver",
    "ResolvedImage",
    "convert",
    "make_linter",
]
