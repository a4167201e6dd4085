"""The build-case corpus under testdata/dockerfiles/build: one directory per case.

A case holds ``Dockerfile``, ``context/`` and ``expected.json``. expected.json carries inputs
(written by hand) next to the recorded expectations:

- ``check_paths``: absolute paths whose metadata is recorded in ``files`` (null = absent);
- ``context_modes``: ``{"rel/path": "0600"}``; git keeps neither such modes nor owners, so the
  context is copied with every file 0644 and directory 0755, then these modes applied;
- ``build_args`` (``{"K": "V"}``) and ``target`` (stage name), passed to both builders;
- ``source``: ``buildkit-...`` when recorded by scripts/record-buildkit-golden.py, or
  ``reference`` when written by hand from docs/reference.md because the recording BuildKit
  does not support the feature (the script leaves those cases alone).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CASES_DIR = Path(__file__).resolve().parents[2] / "testdata" / "dockerfiles" / "build"
INPUT_KEYS = ("description", "check_paths", "context_modes", "build_args", "target", "notes")
RECORDED_KEYS = ("source", "config", "history", "layers", "files")


@dataclass(frozen=True)
class Case:
    name: str
    path: Path

    @property
    def dockerfile(self) -> Path:
        return self.path / "Dockerfile"

    @property
    def expected_path(self) -> Path:
        return self.path / "expected.json"

    def expected(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.expected_path.read_text())
        return data

    def build_args(self) -> dict[str, str]:
        return dict(self.expected().get("build_args") or {})

    def target(self) -> str | None:
        target: str | None = self.expected().get("target")
        return target

    def is_reference(self) -> bool:
        return self.expected().get("source") == "reference"


def all_cases(root: Path = CASES_DIR) -> list[Case]:
    return [Case(p.name, p) for p in sorted(root.iterdir()) if (p / "Dockerfile").is_file()]


def prepare_context(case: Case, dest: Path) -> Path:
    """Copy the case's context to ``dest`` with deterministic modes (see module doc)."""
    shutil.copytree(case.path / "context", dest, symlinks=True)
    for dirpath, _dirnames, filenames in os.walk(dest):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, 0o644)
    for rel, mode in (case.expected().get("context_modes") or {}).items():
        os.chmod(dest / rel, int(mode, 8))
    return dest


def write_expected(case: Case, recorded: dict[str, Any], source: str) -> None:
    """Rewrite expected.json: hand-written inputs kept, recorded fields replaced."""
    old = case.expected() if case.expected_path.exists() else {}
    doc = {k: old[k] for k in INPUT_KEYS if k in old}
    doc["source"] = source
    doc.update({k: recorded[k] for k in RECORDED_KEYS if k in recorded})
    case.expected_path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
