"""``type=image`` and ``type=registry`` outputs: the image under its names in the local
image store, and pushed to the registries of those names when asked (``push=true``;
``type=registry`` always)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, ClassVar

from buildkit_py.api.outputs import OutputSpec
from buildkit_py.errors import UsageError
from buildkit_py.exporter.base import Built, ExportEnv
from buildkit_py.registry.reference import parse_reference

if TYPE_CHECKING:
    from buildkit_py.registry.client import BlobProgress
    from buildkit_py.solver.progress import ProgressWriter


class PushedBytes:
    """The bytes of a push as one status of its step, ``pushing layers 12.3MB / 30.0MB``
    (BuildKit's status name; bkpy adds the bytes sent or found already there)."""

    ID = "pushing layers"

    def __init__(self, writer: ProgressWriter) -> None:
        self.writer = writer
        self.lock = threading.Lock()
        self.blobs: dict[str, tuple[int, int]] = {}
        writer.status(self.ID, 0)

    def __call__(self, p: BlobProgress) -> None:  # from the push's worker threads
        with self.lock:
            self.blobs[p.digest] = (p.done, p.total)
            self._report(completed=False)

    def finish(self) -> None:
        with self.lock:
            self._report(completed=True)

    def _report(self, *, completed: bool) -> None:
        done = sum(d for d, _ in self.blobs.values())
        total = sum(t for _, t in self.blobs.values())
        self.writer.status(self.ID, done, total or None, completed=completed)


class ImageStoreExporter:
    makes_image: ClassVar[bool] = True

    def __init__(self, spec: OutputSpec) -> None:
        self.spec = spec

    def export(self, built: Built, env: ExportEnv) -> None:
        top = built.image_for(self.spec).top
        if not built.names:
            if self.spec.pushes:
                raise UsageError("pushing needs an image name",
                                 hint="add -t NAME or --output type=image,name=NAME,push=true")
            return
        for name in built.names:
            ref = parse_reference(name)
            env.image_store.put(str(ref), top.media_type, top.digest, top.size)
        if self.spec.pushes:
            for name in built.names:
                ref = parse_reference(name)
                with env.step(f"pushing {ref.familiar}") as writer:
                    pushed = PushedBytes(writer)
                    env.registry().push(ref, env.content, top,
                                        tags=(ref.tag,) if ref.tag else (), progress=pushed)
                    pushed.finish()
