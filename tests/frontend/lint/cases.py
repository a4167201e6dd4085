"""The recorded lint cases under testdata/lint: what each runs and what the referee said.

A case is a directory with a Dockerfile (``{REGISTRY}`` stands for the test registry),
the files its COPY/ADD read, and optionally ``args`` (one ``KEY=VALUE`` build arg a line)
and ``target``. ``expected.json`` holds what ``docker buildx build --call check`` of the
newest BuildKit printed for it (``record_referee.py`` writes it): the exit status, the
text screen and the JSON document's warnings and buildError.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3] / "testdata" / "lint"
PLACEHOLDER = "{REGISTRY}"
_META = {"args", "target", "expected.json"}


@dataclass(frozen=True)
class Case:
    name: str
    path: Path

    @property
    def needs_registry(self) -> bool:
        return PLACEHOLDER in (self.path / "Dockerfile").read_text()

    def build_args(self) -> list[str]:
        f = self.path / "args"
        return [line for line in f.read_text().splitlines() if line] if f.exists() else []

    def target(self) -> str | None:
        f = self.path / "target"
        return f.read_text().strip() if f.exists() else None

    def cli_args(self) -> list[str]:
        out: list[str] = []
        for arg in self.build_args():
            out += ["--build-arg", arg]
        target = self.target()
        if target:
            out += ["--target", target]
        return out

    def materialize(self, dest: Path, registry: str | None) -> Path:
        """The case as a build context in ``dest``, with the registry filled in."""
        for src in self.path.rglob("*"):
            rel = src.relative_to(self.path)
            if str(rel) in _META or src.is_dir():
                continue
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out)
        df = dest / "Dockerfile"
        if registry is not None:
            df.write_text(df.read_text().replace(PLACEHOLDER, registry))
        return dest

    def expected(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((self.path / "expected.json").read_text())
        return doc


def all_cases() -> list[Case]:
    return [Case(p.name, p) for p in sorted(ROOT.iterdir()) if (p / "Dockerfile").exists()]


def unfill(value: Any, registry: str | None) -> Any:
    """``value`` with the registry's address put back as the placeholder."""
    if registry is None:
        return value
    return json.loads(json.dumps(value).replace(registry, PLACEHOLDER))


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    """What is compared of a JSON lint result: warnings and the error, not the sources
    (BuildKit's carry an LLB definition with session ids)."""
    out: dict[str, Any] = {"warnings": doc.get("warnings")}
    if doc.get("buildError") is not None:
        out["buildError"] = doc["buildError"]
    return out
