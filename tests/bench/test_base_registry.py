"""The harness's Dockerfile rewrite that points base images at its registry."""

from __future__ import annotations

from pathlib import Path

from bench.harness.base_registry import point_at_registry
from bench.harness.images import BaseImage

IMAGES = [BaseImage("busybox:latest", Path("/nonexistent"), "amd64"),
          BaseImage("busybox:arm64", Path("/nonexistent"), "arm64"),
          BaseImage("toolchain:latest", Path("/nonexistent"), "amd64"),
          BaseImage("bigbase:latest", Path("/nonexistent"), "amd64")]


def test_from_lines_naming_a_harness_image_pull_from_the_registry(tmp_path: Path) -> None:
    df = tmp_path / "Dockerfile"
    df.write_text("ARG TARGETARCH\nFROM toolchain:latest AS build\nRUN echo busybox:latest\n"
                  "from --platform=$BUILDPLATFORM busybox:${TARGETARCH}\nFROM scratch\n"
                  "FROM build AS again\n")
    point_at_registry(df, "127.0.0.1:5555", IMAGES)
    assert df.read_text() == (
        "ARG TARGETARCH\nFROM 127.0.0.1:5555/toolchain:latest AS build\n"
        "RUN echo busybox:latest\n"
        "from --platform=$BUILDPLATFORM 127.0.0.1:5555/busybox:${TARGETARCH}\n"
        "FROM scratch\nFROM build AS again\n")


def test_every_committed_case_pulls_each_base_from_the_registry(tmp_path: Path) -> None:
    cases = Path(__file__).resolve().parents[2] / "bench" / "cases"
    for dockerfile in sorted(cases.glob("*/Dockerfile")):
        df = tmp_path / dockerfile.parent.name
        df.write_text(dockerfile.read_text())
        point_at_registry(df, "127.0.0.1:5555", IMAGES)
        stages: set[str] = {"scratch"}
        for line in df.read_text().splitlines():
            words = [w for w in line.split() if not w.startswith("--")]
            if not words or words[0].upper() != "FROM":
                continue
            assert words[1] in stages or words[1].startswith("127.0.0.1:5555/"), \
                (dockerfile, line)
            if len(words) == 4 and words[2].upper() == "AS":
                stages.add(words[3])
