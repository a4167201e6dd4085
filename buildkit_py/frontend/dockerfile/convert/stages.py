"""The stage graph: lookup by name/index, ``--from`` sources, reachability, cycles."""

from __future__ import annotations

from typing import Any

from buildkit_py.errors import DockerfileError
from buildkit_py.frontend.dockerfile.convert.run_mounts import mount_from
from buildkit_py.frontend.dockerfile.convert.stage_state import Command, StageState
from buildkit_py.frontend.dockerfile.instructions.model import Copy, Instruction, Run
from buildkit_py.frontend.dockerfile.shell_lex import ShellLex


class StageGraph:
    """All stages in Dockerfile order, plus implicit ones (images used by ``--from``)."""

    def __init__(self) -> None:
        self.states: list[StageState] = []
        self.by_name: dict[str, StageState] = {}
        self.implicit: dict[str, StageState] = {}

    def add(self, ds: StageState) -> None:
        """Register a stage; its base is an *earlier* stage of that name, if any."""
        self.states.append(ds)
        if not ds.implicit:
            base = self.by_name.get(ds.base_name.lower())
            if base is not None:
                ds.base = base
            if ds.name:
                self.by_name[ds.name] = ds

    def find(self, name: str) -> StageState | None:
        return self.by_name.get(name.lower())

    def by_index(self, index: int) -> StageState:
        real = [s for s in self.states if not s.implicit]
        if index < 0 or index >= len(real):
            raise DockerfileError(f"invalid stage index {index}")
        return real[index]

    def source(self, ref: str, location: Any) -> StageState:
        """The stage a ``--from=<ref>`` names, or an implicit image/context stage."""
        if ShellLex().process_word(ref, {}) != ref:
            raise DockerfileError(
                "variable expansion is not supported for --from, define a new stage with FROM "
                "using ARG from global scope as a workaround", location)
        if ref.isdigit():
            return self.by_index(int(ref))
        found = self.find(ref)
        if found is not None:
            return found
        implicit = self.implicit.get(ref)
        if implicit is None:
            implicit = StageState(index=len(self.states), name="", base_name=ref,
                                  location=location, implicit=True)
            self.implicit[ref] = implicit
            self.add(implicit)
        return implicit

    def command(self, instr: Instruction, onbuild: bool = False) -> Command:
        """Wrap an instruction with the stages it reads."""
        cmd = Command(instr, onbuild=onbuild)
        if isinstance(instr, Copy) and instr.from_:
            cmd.sources = [self.source(instr.from_, instr.location)]
        elif isinstance(instr, Run):
            for spec in instr.mounts:
                ref = mount_from(spec)
                if ref and spec.type in ("bind", "cache"):
                    cmd.sources.append(self.source(ref, instr.location))
                else:
                    cmd.sources.append(None)
        return cmd


def reachable(target: StageState) -> set[StageState]:
    """Stages the target needs through FROM and ``--from`` edges."""
    seen: set[StageState] = set()
    stack = [target]
    while stack:
        ds = stack.pop()
        if ds in seen:
            continue
        seen.add(ds)
        if ds.base is not None:
            stack.append(ds.base)
        stack.extend(ds.deps)
    return seen


def check_cycles(states: list[StageState]) -> None:
    """Error on a ``--from`` dependency cycle, located at the instructions forming it."""
    done: set[StageState] = set()
    for start in states:
        if start in done:
            continue
        path: list[StageState] = []
        on_path: set[StageState] = set()
        stack: list[tuple[StageState, list[StageState]]] = [(start, list(start.deps))]
        path.append(start)
        on_path.add(start)
        while stack:
            node, pending = stack[-1]
            if not pending:
                stack.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
                continue
            dep = pending.pop()
            if dep in on_path:
                instr = node.deps[dep]
                raise DockerfileError(
                    f"circular dependency detected on stage: {start.display_name}",
                    getattr(instr, "location", None))
            if dep in done:
                continue
            path.append(dep)
            on_path.add(dep)
            stack.append((dep, list(dep.deps)))
