"""What ``bkpy build --call targets|outline`` prints, laid out as buildx/BuildKit print it.

``targets`` lists the stages (the last one is the default target) with their descriptions:
a comment line ``# <stage-name> <description>`` right above ``FROM ... AS <stage-name>``.
``outline`` lists, for one target and the stages it needs (its base stages and the stages
named by ``COPY --from`` / ``RUN --mount=from=``), the build arguments it declares or uses
in FROM lines (with defaults and ``# <ARG> <description>`` comments), and the secret and
ssh ids its ``RUN --mount`` flags ask for. Values are shown unexpanded.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from buildkit_py.errors import UsageError
from buildkit_py.frontend.dockerfile.instructions.model import (
    Arg,
    ArgDefinition,
    Copy,
    Dockerfile,
    Run,
    Stage,
)
from buildkit_py.frontend.dockerfile.instructions.mounts import MountError

_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))")
FORMATS = ("text", "json")


@dataclass(frozen=True)
class OutlineArg:
    name: str
    value: str
    description: str
    line: int


@dataclass(frozen=True)
class OutlineRequest:
    """A secret or ssh id a RUN mount asks for."""

    name: str
    required: bool
    line: int


@dataclass(frozen=True)
class Outline:
    name: str
    description: str
    args: list[OutlineArg]
    secrets: list[OutlineRequest]
    ssh: list[OutlineRequest]


# ---------------------------------------------------------------- tabwriter


def tabwrite(rows: list[list[str]], padding: int) -> str:
    """Go's text/tabwriter with minwidth 0 and ' ' padding: every cell but the last of a
    line is padded to its column's widest cell plus ``padding``."""
    widths: dict[int, int] = {}
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths.get(i, 0), len(cell))
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i] + padding) for i, cell in enumerate(row[:-1])]
        lines.append("".join(cells) + row[-1])
    return "".join(line + "\n" for line in lines)


def _location(line: int) -> dict[str, Any]:
    return {"ranges": [{"start": {"line": line}, "end": {"line": line}}]}


def _sources(df: Dockerfile) -> list[str]:
    return [base64.b64encode(df.source).decode("ascii")]


# ---------------------------------------------------------------- targets


def format_targets(dockerfile: Dockerfile, fmt: str = "text") -> str:
    """The ``--call targets`` listing, as text (a table) or JSON."""
    _check_format(fmt)
    last = len(dockerfile.stages) - 1
    if fmt == "json":
        targets = []
        for st in dockerfile.stages:
            entry: dict[str, Any] = {}
            if st.name:
                entry["name"] = st.name
            if st.index == last:
                entry["default"] = True
            if st.description:
                entry["description"] = st.description
            entry["base"] = st.base
            if st.platform:
                entry["platform"] = st.platform
            entry["location"] = _location(st.location.start_line)
            targets.append(entry)
        return json.dumps({"Targets": targets, "Sources": _sources(dockerfile)}, indent=2) + "\n"
    rows = [["TARGET", "DESCRIPTION"]]
    for st in dockerfile.stages:
        name = st.name or ""
        if st.index == last:
            name = f"{name} (default)" if name else "(default)"
        rows.append([name, st.description])
    return tabwrite(rows, padding=1)


# ---------------------------------------------------------------- outline


def _stage_refs(stage: Stage) -> list[str]:
    refs = []
    for cmd in stage.commands:
        if isinstance(cmd, Copy) and cmd.from_:
            refs.append(cmd.from_)
        elif isinstance(cmd, Run):
            for spec in cmd.mounts:
                for key, value in spec.fields:
                    if key == "from" and value:
                        refs.append(value)
    return refs


def _reachable(df: Dockerfile, target: Stage) -> list[Stage]:
    """``target`` and the stages it builds on or copies from, target first."""
    order: list[Stage] = []
    seen: set[int] = set()
    todo = [target]
    while todo:
        st = todo.pop(0)
        if st.index in seen:
            continue
        seen.add(st.index)
        order.append(st)
        base = df.stage(st.base) if not st.base.isdigit() else None
        if base is not None and base.index < st.index:
            todo.append(base)
        for ref in _stage_refs(st):
            dep = df.stage(ref)
            if dep is not None and dep.index != st.index:
                todo.append(dep)
    return order


def _variables(text: str | None) -> list[str]:
    if not text:
        return []
    return [m.group(1) or m.group(2) for m in _VARIABLE.finditer(text)]


def outline(dockerfile: Dockerfile, target: str | None = None) -> Outline:
    """Compute the outline for ``target`` (a stage name or index; default: last stage)."""
    stage = dockerfile.default_stage
    if target:
        found = dockerfile.stage(target)
        if found is None:
            names = [s.name for s in dockerfile.stages if s.name]
            raise UsageError(
                f'target stage "{target}" could not be found',
                hint=f"stages: {', '.join(names)}" if names else None,
            )
        stage = found
    meta: dict[str, tuple[ArgDefinition, int]] = {}
    for inst in dockerfile.meta_args:
        for d in inst.args:
            meta.setdefault(d.key, (d, inst.location.start_line))
    args: dict[str, OutlineArg] = {}
    secrets: dict[str, OutlineRequest] = {}
    ssh: dict[str, OutlineRequest] = {}

    def use_meta(name: str) -> None:
        if name in args or name not in meta:
            return
        d, line = meta[name]
        args[name] = OutlineArg(name, d.value or "", d.description, line)
        for dep in _variables(d.value):
            use_meta(dep)

    for st in _reachable(dockerfile, stage):
        for name in _variables(st.base) + _variables(st.platform):
            use_meta(name)
        for cmd in st.commands:
            if isinstance(cmd, Arg):
                for d in cmd.args:
                    if d.key in args:
                        continue
                    if d.value is None and d.key in meta:
                        use_meta(d.key)
                        continue
                    line = cmd.location.start_line
                    args[d.key] = OutlineArg(d.key, d.value or "", d.description, line)
            elif isinstance(cmd, Run):
                _collect_mounts(cmd, secrets, ssh)
    by_line = sorted(args.values(), key=lambda a: a.line)
    return Outline(
        name=stage.name or "",
        description=stage.description,
        args=by_line,
        secrets=sorted(secrets.values(), key=lambda s: s.line),
        ssh=sorted(ssh.values(), key=lambda s: s.line),
    )


def _collect_mounts(
    cmd: Run, secrets: dict[str, OutlineRequest], ssh: dict[str, OutlineRequest]
) -> None:
    line = cmd.location.start_line
    for spec in cmd.mounts:
        if spec.type not in ("secret", "ssh"):
            continue
        try:
            mount = spec.resolve()
        except MountError:  # values only valid once expanded: show them as written
            continue
        if spec.type == "secret":
            name, into = mount.secret_id, secrets
        else:
            name, into = mount.ssh_id, ssh
        into.setdefault(name, OutlineRequest(name, mount.required, line))


def format_outline(dockerfile: Dockerfile, target: str | None = None, fmt: str = "text") -> str:
    """The ``--call outline`` report for ``target``, as text or JSON."""
    _check_format(fmt)
    out = outline(dockerfile, target)
    if fmt == "json":
        data: dict[str, Any] = {}
        if out.name:
            data["name"] = out.name
        if out.description:
            data["description"] = out.description
        if out.args:
            data["args"] = [_json_arg(a) for a in out.args]
        if out.secrets:
            data["secrets"] = [_json_request(s) for s in out.secrets]
        if out.ssh:
            data["ssh"] = [_json_request(s) for s in out.ssh]
        data["sources"] = _sources(dockerfile)
        return json.dumps(data, indent=2) + "\n"
    parts = []
    if out.name or out.description:
        rows = [["TARGET:", out.name or "(default)"]]
        if out.description:
            rows.append(["DESCRIPTION:", out.description])
        parts.append(tabwrite(rows, padding=1) + "\n")
    if out.args:
        rows = [["BUILD ARG", "VALUE", "DESCRIPTION"]]
        rows += [[a.name, a.value, a.description] for a in out.args]
        parts.append(tabwrite(rows, padding=3) + "\n")
    for title, items in (("SECRET", out.secrets), ("SSH", out.ssh)):
        if items:
            rows = [[title, "REQUIRED"]]
            rows += [[s.name, "true" if s.required else ""] for s in items]
            parts.append(tabwrite(rows, padding=3) + "\n")
    return "".join(parts)


def _json_arg(a: OutlineArg) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": a.name}
    if a.description:
        entry["description"] = a.description
    if a.value:
        entry["value"] = a.value
    entry["location"] = _location(a.line)
    return entry


def _json_request(s: OutlineRequest) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": s.name}
    if s.required:
        entry["required"] = True
    entry["location"] = _location(s.line)
    return entry


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
