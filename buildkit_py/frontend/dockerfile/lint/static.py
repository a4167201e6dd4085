"""Checks that need only the loaded Dockerfile, run before any stage is converted.

BuildKit finds these while typing instructions and validating stages (MaintainerDeprecated,
StageNameCasing, FromAsCasing, InvalidDefinitionDescription; then DuplicateStageName,
ReservedStageName, ConsistentInstructionCasing), and reports empty continuation lines the
parser saw. They run in that order, so the warnings come out in BuildKit's order. Each
check is one entry of :data:`CHECKS`.
"""

from __future__ import annotations

from collections.abc import Callable

from buildkit_py.frontend.dockerfile.instructions import model as m
from buildkit_py.frontend.dockerfile.lint.linter import Linter
from buildkit_py.frontend.dockerfile.parser.nodes import ParseWarning

_RESERVED_STAGE_NAMES = ("context", "scratch")


def _all_instructions(df: m.Dockerfile) -> list[m.Instruction]:
    """Every instruction in file order (global ARGs, then each stage's FROM and body)."""
    out: list[m.Instruction] = sorted(df.meta_args, key=lambda a: a.location.start_line)
    for st in df.stages:
        out.append(st.from_)
        out.extend(st.commands)
    return sorted(out, key=lambda i: i.location.start_line)


def empty_continuations(df: m.Dockerfile, lint: Linter) -> None:
    report_empty_continuations(df.warnings, lint)


def report_empty_continuations(warnings: list[ParseWarning], lint: Linter) -> None:
    for w in warnings:
        if w.rule == "NoEmptyContinuation":
            lint.run("NoEmptyContinuation", w.location)


def _description(instruction: str, keys: list[str], comments: list[str], instr: m.Instruction,
                  lint: Linter) -> None:
    if not comments or not keys:
        return
    if comments[-1].split(" ")[0] in keys:
        return
    lint.run("InvalidDefinitionDescription", instr.location, instruction,
             keys[0] if len(keys) == 1 else "<arg_key>")


def _from_casing(c: m.From, lint: Linter) -> None:
    name = c.name_as_written
    if name is not None and name != name.lower():
        lint.run("StageNameCasing", c.location, name)
    as_word, keyword = c.as_keyword, c.keyword
    if as_word is None or not keyword:
        return
    if keyword == keyword.lower():
        mismatch = as_word != as_word.lower()
    elif keyword == keyword.upper():
        mismatch = as_word != as_word.upper()
    else:  # an inconsistent FROM is ConsistentInstructionCasing's business
        mismatch = False
    if mismatch:
        lint.run("FromAsCasing", c.location, keyword, as_word)


def check_instruction(instr: m.Instruction, lint: Linter) -> None:
    """What BuildKit checks while typing one instruction, under the ``# check=`` comment
    right above it, if any."""
    here = lint.with_comments(instr.comments)
    if isinstance(instr, m.Maintainer):
        here.run("MaintainerDeprecated", instr.location)
    elif isinstance(instr, m.From):
        _from_casing(instr, here)
        if instr.stage_name:
            _description("FROM", [instr.stage_name], instr.comments, instr, here)
    elif isinstance(instr, m.Arg):
        _description("ARG", [a.key for a in instr.args], instr.comments, instr, here)


def per_instruction(df: m.Dockerfile, lint: Linter) -> None:
    for instr in _all_instructions(df):
        check_instruction(instr, lint)


def stage_names(df: m.Dockerfile, lint: Linter) -> None:
    seen: set[str] = set()
    for st in df.stages:
        if not st.name:
            continue
        if st.name in _RESERVED_STAGE_NAMES:
            lint.run("ReservedStageName", st.location, st.name)
        if st.name in seen:
            lint.run("DuplicateStageName", st.location, st.name)
        seen.add(st.name)


def _consistent(word: str) -> bool:
    return word in (word.lower(), word.upper())


def command_casing(df: m.Dockerfile, lint: Linter) -> None:
    """Every instruction word (in stages) must follow the casing of the majority."""
    words: list[tuple[str, m.Instruction]] = []
    for st in df.stages:
        words.append((st.from_.keyword, st.from_))
        words.extend((c.keyword, c) for c in st.commands)
    lower = sum(1 for w, _ in words if _consistent(w) and w == w.lower())
    upper = sum(1 for w, _ in words if _consistent(w) and w != w.lower())
    majority_lower = lower > upper
    for word, instr in words:
        if not word:
            continue
        if majority_lower and word != word.lower():
            lint.run("ConsistentInstructionCasing", instr.location, word, "lowercase")
        elif not majority_lower and word != word.upper():
            lint.run("ConsistentInstructionCasing", instr.location, word, "uppercase")


CHECKS: tuple[Callable[[m.Dockerfile, Linter], None], ...] = (
    empty_continuations,
    per_instruction,
    stage_names,
    command_casing,
)


def run_static_checks(df: m.Dockerfile, lint: Linter) -> None:
    for check in CHECKS:
        check(df, lint)
