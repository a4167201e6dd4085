"""A build's images, made once for all its image outputs.

A build makes at most two sets: one with the layer options of its first output that
leaves the builder (a push, an OCI or docker layout), one with those of its first output
that stays (the local image store); gzip unless told, for both. The local store keeps
layers compressed, as BuildKit's does: deflating a layer when it is loaded costs about
what writing it uncompressed did (bench/export_bench.py: ISA-L on the other core against
twice the bytes hashed and written), and a later push of it then only uploads. Each layer
blob is made once and remembered (``exporter.layers``), so an image pushed after
``--load`` reuses the loaded blobs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from buildkit_py.api import annotations as ann
from buildkit_py.api.outputs import OutputSpec
from buildkit_py.errors import UsageError
from buildkit_py.exporter.base import BuildImages, ExportEnv, ImageSet, PlatformResult
from buildkit_py.exporter.image import make_image
from buildkit_py.exporter.layers import (
    BlobSink,
    ExportOptions,
    export_chains,
    snapshot_created,
)
from buildkit_py.exporter.manifest import Descriptor, index_blob

if TYPE_CHECKING:
    from buildkit_py.registry.streamed_upload import StreamedUpload

COMPRESSIONS = ("gzip", "zstd", "uncompressed")


def make_build_images(specs: list[OutputSpec], results: list[PlatformResult],
                      epoch: int | None, env: ExportEnv, names: Sequence[str] = ()
                      ) -> BuildImages:
    """The image sets ``specs`` (the build's image outputs) need; with none, the local
    store's (an image for ``--iidfile`` or ``--metadata-file``). When the first output
    that leaves the builder is pushed, the layers it makes are uploaded to the first of
    ``names`` while they are compressed (``registry.streamed_upload``)."""
    leaving = [o for o in specs if o.leaves_builder]
    staying = [o for o in specs if not o.leaves_builder]
    shipped: ImageSet | None = None
    stored: ImageSet | None = None
    with env.step("exporting to image"):
        if leaving:
            push_to = names[0] if names and leaving[0].pushes else None
            shipped = make_image_set(leaving[0], results, epoch, env, "gzip", push_to)
        if staying or not leaving:
            stored = make_image_set(staying[0] if staying else OutputSpec("image"),
                                    results, epoch, env, "gzip")
    return BuildImages(shipped, stored)


def layer_options(spec: OutputSpec, epoch: int | None,
                  default_compression: str) -> ExportOptions:
    """The layer options of output ``spec``'s attributes."""
    level = spec.attrs.get("compression-level")
    try:
        level_n = int(level) if level is not None else None
    except ValueError:
        raise UsageError(f"compression-level={level!r} is not a number") from None
    rewrite = spec.attrs.get("rewrite-timestamp", "false") == "true"
    opts = ExportOptions(
        compression=spec.attrs.get("compression", default_compression),
        level=level_n,
        force_compression=spec.attrs.get("force-compression", "false") == "true",
        oci_mediatypes=spec.oci_mediatypes,
        source_date_epoch=epoch if rewrite else None)
    if opts.compression not in COMPRESSIONS:
        raise UsageError(f"unknown compression {opts.compression!r}",
                         hint="use gzip, zstd or uncompressed")
    return opts


def make_image_set(spec: OutputSpec, results: list[PlatformResult], epoch: int | None,
                   env: ExportEnv, default_compression: str, push_to: str | None = None
                   ) -> ImageSet:
    """The images of ``results`` with the layer options of output ``spec``; the layers
    made are streamed to ``push_to``'s repository as they are compressed."""
    opts = layer_options(spec, epoch, default_compression)
    groups = ann.group(spec.attrs)  # checked before any layer is made, as BuildKit does
    ann.check(groups, [str(r.platform) for r in results], oci=opts.oci_mediatypes)
    multi = len(results) > 1
    uploads: list[StreamedUpload] = []

    def sink() -> BlobSink | None:
        assert push_to is not None
        upload = env.registry().start_streamed_upload(push_to)
        if upload is not None:
            uploads.append(upload)
        return upload

    chains = [env.chain(r.snapshot_key) if r.snapshot_key else [] for r in results]
    try:
        every_blobs = export_chains(
            env.snapshotter, env.content, env.layer_cache,
            [(keys, ((r.base_image or {}).get("rootfs") or {}).get("diff_ids") or [])
             for keys, r in zip(chains, results, strict=True)],
            opts, sink=sink if push_to else None)
    finally:
        for upload in uploads:  # the push then finds these blobs in the registry
            upload.wait()
    images = []
    descriptor_annotations: list[dict[str, str]] = []
    for r, keys, blobs in zip(results, chains, every_blobs, strict=True):
        base = r.base_image or {}
        # when each layer was made: a cached rebuild then keeps the image's timestamps
        times = [snapshot_created(env.snapshotter, k) for k in keys]
        # single-platform: only the annotations that name no platform, as in BuildKit
        mine = ann.for_platform(groups, str(r.platform) if multi else None)
        descriptor_annotations.append(mine.manifest_descriptor)
        images.append(make_image(
            env.content, r.config, blobs, os_=r.platform.os, arch=r.platform.architecture,
            variant=r.platform.variant, oci=opts.oci_mediatypes, source_date_epoch=epoch,
            layer_times=times, base_history=base.get("history") or [],
            annotations=mine.manifest))
    m = images[0].manifest.descriptor
    top = Descriptor(m.media_type, m.digest, m.size, platform=m.platform,
                     annotations=descriptor_annotations[0])
    if multi:
        every = ann.for_platform(groups, None)
        idx = index_blob([Descriptor(i.manifest.descriptor.media_type,
                                     i.manifest.descriptor.digest,
                                     i.manifest.descriptor.size, platform=i.platform,
                                     annotations=a)
                          for i, a in zip(images, descriptor_annotations, strict=True)],
                         oci=opts.oci_mediatypes, annotations=every.index)
        env.content.write(idx.data, idx.descriptor.digest)
        top = Descriptor(idx.descriptor.media_type, idx.descriptor.digest,
                         idx.descriptor.size, annotations=every.index_descriptor)
    return ImageSet(images, top, opts.oci_mediatypes)
