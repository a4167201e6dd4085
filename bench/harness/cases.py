"""The benchmark cases: a committed Dockerfile (``bench/cases/NAME``) plus a generated context."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from buildkit_py.errors import UsageError

from . import contexts

CASES_DIR = Path(__file__).resolve().parent.parent / "cases"
# Bump when a generator changes, so cached contexts are made again.
GENERATOR_VERSION = "1"


@dataclass(frozen=True)
class Case:
    name: str
    summary: str
    generate: Callable[[Path], None]
    change_file: str  # rewritten (appended to) by the one-file-change scenario
    change_line: str = "# change {n}\n"
    base_images: tuple[str, ...] = ("busybox:latest",)
    platforms: tuple[str, ...] = ()  # () = the host's; several = a tar of per-platform trees

    @property
    def dockerfile(self) -> Path:
        return CASES_DIR / self.name / "Dockerfile"

    @property
    def multi_platform(self) -> bool:
        return len(self.platforms) > 1


CASES: dict[str, Case] = {c.name: c for c in (
    Case("small", "single stage, 2 files, 1 RUN", contexts.small, "config.txt"),
    Case("multistage", "base + 2 parallel sha256 stages + scratch", contexts.multistage,
         "data/left/part0.bin"),
    Case("context20k", "20,000 files / 200 MB context copied in", contexts.context20k,
         "tree/d000/f00000.dat"),
    Case("layer300", "one RUN writes a 300 MB layer", contexts.layer300, "stamp.txt"),
    Case("chain50", "50 small RUN steps in a chain", contexts.chain50, "seed.txt"),
    Case("cprogram", "C program compiled (tcc) in a builder stage", contexts.cprogram,
         "src/mod00.c", change_line="/* change {n} */\n",
         base_images=("toolchain:latest", "busybox:latest")),
    Case("twoplatform", "linux/amd64 + linux/arm64 (emulated RUN)", contexts.twoplatform,
         "stamp.txt", base_images=("busybox:amd64", "busybox:arm64"),
         platforms=("linux/amd64", "linux/arm64")),
    Case("noop30", "30 steps in 3 stages (no-op rebuild target)", contexts.noop30,
         "src/part00.txt"),
    Case("bigbase", "a 200 MB base image in 3 large layers pulled", contexts.bigbase,
         "stamp.txt", base_images=("bigbase:latest",)),
)}


def select(names: list[str] | None) -> list[Case]:
    if not names:
        return list(CASES.values())
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise UsageError(f"unknown case(s): {', '.join(unknown)}",
                         hint=f"choose from {', '.join(CASES)}")
    return [CASES[n] for n in names]


def prepare_context(case: Case, root: Path) -> Path:
    """The case's context under ``root`` (made once, reused while its stamp matches)."""
    ctx = root / case.name
    stamp = root / f"{case.name}.stamp"
    if not (stamp.is_file() and stamp.read_text() == GENERATOR_VERSION and ctx.is_dir()):
        shutil.rmtree(ctx, ignore_errors=True)
        stamp.unlink(missing_ok=True)
        ctx.mkdir(parents=True)
        case.generate(ctx)
        stamp.write_text(GENERATOR_VERSION)
    shutil.copyfile(case.dockerfile, ctx / "Dockerfile")
    return ctx


def change_one_file(case: Case, ctx: Path, n: int) -> None:
    """Append a line unique to ``n`` so the content never repeats an earlier state."""
    with open(ctx / case.change_file, "a") as fh:
        fh.write(case.change_line.format(n=n))
