"""``type=tar`` outputs: the result's files as one tar (``dest=-``: stdout), each
platform under its own folder when several."""

from __future__ import annotations

import contextlib
import os
import tarfile
from pathlib import Path
from typing import BinaryIO, ClassVar

from buildkit_py.api.outputs import OutputSpec
from buildkit_py.exporter.base import Built, ExportEnv
from buildkit_py.exporter.output_file import output_file


class TarExporter:
    makes_image: ClassVar[bool] = False

    def __init__(self, spec: OutputSpec) -> None:
        self.spec = spec

    def export(self, built: Built, env: ExportEnv) -> None:
        with env.step("sending tarball"), contextlib.ExitStack() as stack:
            roots = {}
            for r in built.results:
                prefix = r.platform.for_path() if built.multi else ""
                roots[prefix] = stack.enter_context(env.mount(r.snapshot_key))
            export_tar(roots, self.spec.dest or "-")


def export_tar(roots: dict[str, Path], dest: str) -> None:
    """Tar of the tree(s); with several platforms each goes under its own directory."""
    with output_file(dest) as f:
        _write(roots, f)


def _write(roots: dict[str, Path], out: BinaryIO) -> None:
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for prefix, root in roots.items():
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                for name in [*sorted(dirnames), *sorted(filenames)]:
                    full = os.path.join(dirpath, name)
                    rel = os.path.relpath(full, root)
                    arc = f"{prefix}/{rel}" if prefix else rel
                    tf.add(full, arcname=arc, recursive=False)
