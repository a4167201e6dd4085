"""Base images served to both builders from one throwaway registry on 127.0.0.1.

BuildKit has no ``image import``: its OCI worker gets a base image by pulling it. So both
builders pull: the harness's ``docker save`` archives are copied with ``skopeo`` into a
``docker-registry`` that lives for the whole run, and every case's Dockerfile is rewritten
from ``FROM busybox:...`` to ``FROM 127.0.0.1:PORT/busybox:...``. A cold build therefore
includes resolving and pulling its base images, for bkpy and BuildKit alike, as a user's
first build does; later builds resolve the tag again (both builders do by default) and
find the layers cached.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from .errors import BenchError
from .images import BaseImage
from .procs import run_quiet
from .registry import LocalRegistry


def push_base_images(registry: LocalRegistry, images: Sequence[BaseImage]) -> None:
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        raise BenchError("the harness serves base images with skopeo",
                         hint="apt-get install -y skopeo")
    for image in images:
        run_quiet([skopeo, "copy", "-q", "--dest-tls-verify=false",
                   f"docker-archive:{image.archive}", f"docker://{registry.host}/{image.tag}"])


def point_at_registry(dockerfile: Path, host: str, images: Sequence[BaseImage]) -> None:
    """Rewrite ``FROM <base>:...`` lines naming a harness image to pull it from ``host``."""
    names = sorted({i.tag.split(":", 1)[0] for i in images}, key=len, reverse=True)
    if not names:
        return
    pattern = re.compile(r"^(\s*FROM\s+(?:--\S+\s+)*)(" + "|".join(map(re.escape, names))
                         + r")(:)", re.IGNORECASE | re.MULTILINE)
    text = dockerfile.read_text()
    dockerfile.write_text(pattern.sub(lambda m: f"{m[1]}{host}/{m[2]}{m[3]}", text))
