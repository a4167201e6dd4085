"""The differential corpus under testdata/referee: one directory per case.

A case directory holds:

- ``Dockerfile`` (or the file named by ``dockerfile``);
- ``context/`` (optional; an empty context when absent);
- ``case.json`` (optional, written by hand): the inputs, passed identically to both builders;
- ``expected.json``: what the referee (the newest BuildKit, through buildx) produced, written by
  ``scripts/record-referee.py`` and never edited by hand.

Inputs in case.json (all optional):

- ``description``: what the case checks;
- ``build_args`` ``{"K": "V"}``, ``target``, ``platforms`` (default ``["linux/amd64"]``);
- ``secrets`` ``{"id": "content"}``: written to files and passed as ``--secret id=ID,src=F``;
- ``add_hosts`` ``["name:ip", "name=ip"]``: passed as ``--add-host``;
- ``flags`` ``["--shm-size", "128m"]``: further build flags, passed as they are to both;
- ``allow`` ``["network.host"]``: entitlements asked for with ``--allow`` (neither builder is
  configured to grant any);
- ``contexts`` ``{"name": "dir"}``: named contexts, ``dir`` relative to the case directory;
- ``context_modes`` ``{"rel/path": "0600"}``: git keeps neither modes nor owners, so the context
  is copied with every file 0644 and directory 0755, then these modes applied;
- ``context_hardlinks`` ``{"rel/link": "rel/file"}``: git keeps no hard links either, so these
  are made after the copy (the link replaces a file of the same name);
- ``dockerfile``: the Dockerfile's name inside the case directory;
- ``source_date_epoch``: set ``SOURCE_DATE_EPOCH`` and ``rewrite-timestamp=true``; the image ID
  and every diff_id are then compared too;
- ``differs`` ``{"reason": "...", "lines": [...]}``: a difference from the referee that bkpy keeps
  on purpose; the comparison must give exactly these lines (so a fix, or a new difference,
  fails the case until case.json is updated).

Every case gets the named context ``busybox``: the test base image (tests/images.py) as an OCI
layout, so ``FROM busybox`` means the same bytes to both builders and nothing is pulled.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CASES_DIR = REPO / "testdata" / "referee"
DEFAULT_PLATFORMS = ("linux/amd64",)
INPUT_KEYS = frozenset({"description", "build_args", "target", "platforms", "secrets", "add_hosts",
                        "allow", "flags",
                        "contexts", "context_modes", "context_hardlinks", "dockerfile",
                        "source_date_epoch",
                        "differs"})


@dataclass(frozen=True)
class Case:
    name: str
    path: Path

    @property
    def inputs(self) -> dict[str, Any]:
        f = self.path / "case.json"
        data: dict[str, Any] = json.loads(f.read_text()) if f.exists() else {}
        unknown = set(data) - INPUT_KEYS
        if unknown:
            raise ValueError(f"{f}: unknown keys {sorted(unknown)}")
        return data

    @property
    def dockerfile(self) -> Path:
        return self.path / str(self.inputs.get("dockerfile", "Dockerfile"))

    @property
    def expected_path(self) -> Path:
        return self.path / "expected.json"

    def expected(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.expected_path.read_text())
        return data

    @property
    def platforms(self) -> list[str]:
        return list(self.inputs.get("platforms") or DEFAULT_PLATFORMS)

    @property
    def source_date_epoch(self) -> int | None:
        sde = self.inputs.get("source_date_epoch")
        return None if sde is None else int(sde)


def all_cases(root: Path = CASES_DIR) -> list[Case]:
    return [Case(p.name, p) for p in sorted(root.iterdir()) if p.is_dir()
            and any((p / n).is_file() for n in ("Dockerfile", "case.json"))]


def _prepare_context(case: Case, dest: Path) -> Path:
    src = case.path / "context"
    if src.is_dir():
        shutil.copytree(src, dest, symlinks=True)
    else:
        dest.mkdir(parents=True)
    for dirpath, _dirnames, filenames in os.walk(dest):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, 0o644)
    for rel, mode in (case.inputs.get("context_modes") or {}).items():
        os.chmod(dest / rel, int(mode, 8))
    for link, target in (case.inputs.get("context_hardlinks") or {}).items():
        (dest / link).unlink(missing_ok=True)
        os.link(dest / target, dest / link)
    return dest


@dataclass(frozen=True)
class Invocation:
    """One build of a case: the arguments after ``build`` and the extra environment, the same
    for ``bkpy`` and ``docker buildx``."""

    args: list[str]
    env: dict[str, str]
    output: Path


def invocation(case: Case, work: Path, base_layout: Path) -> Invocation:
    """Lay out the case's inputs under ``work`` and give the command line that builds it."""
    inputs = case.inputs
    ctx = _prepare_context(case, work / "context")
    out = work / "image.tar"
    output = f"type=oci,dest={out}"
    env: dict[str, str] = {}
    sde = case.source_date_epoch
    if sde is not None:
        env["SOURCE_DATE_EPOCH"] = str(sde)
        output += ",rewrite-timestamp=true"
    args = ["--progress", "plain", "--network", "none", "-f", str(case.dockerfile),
            "--platform", ",".join(case.platforms), "--output", output,
            "--build-context", f"busybox=oci-layout://{base_layout}"]
    for key, value in (inputs.get("build_args") or {}).items():
        args += ["--build-arg", f"{key}={value}"]
    for entitlement in inputs.get("allow") or []:
        args += ["--allow", entitlement]
    for host in inputs.get("add_hosts") or []:
        args += ["--add-host", host]
    args += [str(flag) for flag in inputs.get("flags") or []]
    if inputs.get("target"):
        args += ["--target", str(inputs["target"])]
    for name, rel in (inputs.get("contexts") or {}).items():
        args += ["--build-context", f"{name}={case.path / rel}"]
    secrets = work / "secrets"
    for sid, content in (inputs.get("secrets") or {}).items():
        secrets.mkdir(exist_ok=True)
        (secrets / sid).write_text(content)
        args += ["--secret", f"id={sid},src={secrets / sid}"]
    return Invocation([*args, str(ctx)], env, out)
