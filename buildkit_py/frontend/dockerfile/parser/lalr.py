"""Run the LALR(1) tables that Lark builds from ``grammar/dockerfile.lark``.

Lark compiles the grammar (terminals, rules, the LALR(1) action/goto table) and caches
it; this module interprets that table with a tight loop that lexes and parses together. It
keeps Lark's semantics -- a *contextual* lexer (in each parser state only the terminals the
state accepts are tried, highest priority first), ``%ignore``d blanks, rules and terminals
whose names start with ``_`` inlined or filtered out -- while avoiding the per-token
bookkeeping of Lark's generic runtime, which dominated parse time (~3x slower).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from lark import Lark

_BLANKS = "[ \t\x0b\x0c\r]*"  # the grammar's %ignore'd WS, folded into every state's pattern
_NEWLINE = "_NL"
_END = "$END"


# A token is a plain tuple (cheapest to build): terminal name, matched text, offset in the
# input, 1-based line.
Tok = tuple[str, str, int, int]
TYPE: Final = 0
VALUE: Final = 1
POS: Final = 2
LINE: Final = 3


class SyntaxFailure(Exception):
    """The input does not fit the grammar (position and line of the offending text)."""

    def __init__(self, pos: int, line: int, expected: list[str]) -> None:
        super().__init__(f"unexpected input at line {line}, expected one of {expected}")
        self.pos = pos
        self.line = line
        self.expected = expected


# A reduction: (nonterminal, number of children, child plan, callback or None if inlined).
# The plan lists, per child, 0 = drop (filtered token), 1 = keep, 2 = splice (the list an
# inlined rule produced); it is None when every child is kept as is.
_Rule = tuple[str, int, tuple[int, ...] | None, Callable[[list[Any]], Any] | None]


def tables_from_lark(lark: Lark) -> dict[str, Any]:
    """Plain data (picklable without Lark) describing the LALR table and the terminals."""
    table = lark.parser.parser._parse_table
    lexer_conf = lark.parser.lexer_conf
    rule_index: dict[int, int] = {}
    rules: list[tuple[str, tuple[int, ...]]] = []  # (nonterminal, child plan)
    actions: dict[int, dict[str, int]] = {}
    for state, row in table.states.items():
        acts: dict[str, int] = {}
        for symbol, (action, arg) in row.items():
            if action.name == "Shift":
                acts[str(symbol)] = arg
                continue
            number = rule_index.get(id(arg))
            if number is None:
                number = rule_index[id(arg)] = len(rules)
                rules.append((str(arg.origin.name), tuple(_plan(sym) for sym in arg.expansion)))
            acts[str(symbol)] = -(number + 1)
        actions[state] = acts
    terminals = {
        str(t.name): (t.priority, t.pattern.max_width, len(t.pattern.value), t.pattern.to_regexp())
        for t in lexer_conf.terminals
    }
    # Checked here, once per grammar, rather than compiling every terminal again at run time.
    for name, (_, _, _, regexp) in terminals.items():
        if re.compile(regexp).groups:  # pragma: no cover - grammar invariant
            raise ValueError(f"terminal {name} must not use capturing groups")
    return {
        "actions": actions,
        "rules": rules,
        "terminals": terminals,
        "ignore": sorted(str(n) for n in lexer_conf.ignore),
        "start_states": dict(table.start_states),
        "end_states": dict(table.end_states),
    }


def _plan(sym: Any) -> int:
    """0: filtered token (``_NAME`` or anonymous), 1: keep, 2: splice an inlined ``_rule``."""
    name = str(sym.name)
    if sym.is_term:
        return 0 if sym.filter_out or name.startswith("_") else 1
    return 2 if name.startswith("_") else 1


class LalrParser:
    """A compiled grammar: per-state actions and lazily built per-state token patterns."""

    def __init__(self, tables: dict[str, Any], callbacks: object) -> None:
        self.actions: dict[int, dict[str, int]] = tables["actions"]
        self.rules: list[_Rule] = [
            (
                origin,
                len(plan),
                None if all(p == 1 for p in plan) else tuple(plan),
                None if origin.startswith("_") else getattr(callbacks, origin),
            )
            for origin, plan in tables["rules"]
        ]
        self.start_states: dict[str, int] = tables["start_states"]
        self.end_states: dict[str, int] = tables["end_states"]
        self.terminals: dict[str, tuple[int, int, int, str]] = tables["terminals"]
        self.ignore = set(tables["ignore"])
        self._re = re
        self._patterns: dict[int, tuple[Any, tuple[str, ...]]] = {}
        self._by_accepts: dict[frozenset[str], tuple[Any, tuple[str, ...]]] = {}

    def _pattern(self, state: int) -> tuple[Any, tuple[str, ...]]:
        accepts = frozenset(
            name
            for name in self.actions[state]
            if name in self.terminals and name not in self.ignore
        )
        found = self._by_accepts.get(accepts)
        if found is None:
            # Lark's lexer order: priority, then longest possible match, then pattern length.
            names = sorted(accepts, key=lambda n: (-self.terminals[n][0], -self.terminals[n][1],
                                                   -self.terminals[n][2], n))
            # Terminals have no capturing groups (checked by tables_from_lark), so group i
            # is alternative i.
            alternatives = [f"({self.terminals[name][3]})" for name in names]
            pattern = self._re.compile(_BLANKS + "(?:" + "|".join(alternatives) + ")")
            found = (pattern, tuple(names))
            self._by_accepts[accepts] = found
        self._patterns[state] = found
        return found

    def compile_all(self) -> None:
        """Compile every state's lexer pattern now (they are otherwise made on first use):
        for a process that forks workers, so none of them compiles its own."""
        for state in self.actions:
            if state not in self._patterns:
                self._pattern(state)

    def parse(self, text: str, start: str) -> Any:
        """Parse ``text`` from rule ``start``; returns what the start rule's callback returns."""
        actions = self.actions
        rules = self.rules
        patterns = self._patterns
        state_stack = [self.start_states[start]]
        value_stack: list[Any] = []
        end_state = self.end_states[start]
        pos = 0
        end = len(text)
        line = 1
        while True:
            if pos < end:
                state = state_stack[-1]
                found = patterns.get(state)
                if found is None:
                    found = self._pattern(state)
                m = found[0].match(text, pos)
                if m is None:
                    if text[pos:].strip(" \t\x0b\x0c\r"):
                        raise SyntaxFailure(pos, line, list(found[1]))
                    pos = end
                    continue
                idx = m.lastindex
                name = found[1][idx - 1]
                start_pos = m.start(idx)
                pos = m.end()
                tok: Tok = (name, text[start_pos:pos], start_pos, line)
                if name == _NEWLINE:
                    line += 1
            else:
                tok = (_END, "", end, line)
            kind = tok[0]
            # Feed the token: reduce as long as the table says so, then shift it.
            while True:
                act = actions[state_stack[-1]].get(kind)
                if act is None:
                    raise SyntaxFailure(tok[2], tok[3], sorted(actions[state_stack[-1]]))
                if act >= 0:
                    state_stack.append(act)
                    value_stack.append(tok)
                    break
                origin, size, plan, callback = rules[-act - 1]
                if not size:
                    kept: list[Any] = []
                else:
                    kept = value_stack[-size:]
                    del value_stack[-size:]
                    del state_stack[-size:]
                    if plan is not None:
                        kept = _apply_plan(plan, kept)
                value = kept if callback is None else callback(kept)
                goto = actions[state_stack[-1]][origin]
                state_stack.append(goto)
                value_stack.append(value)
                if kind == _END and goto == end_state:
                    return value


def _apply_plan(plan: tuple[int, ...], children: list[Any]) -> list[Any]:
    """Drop filtered tokens and splice the children of inlined rules."""
    if plan[0] == 2:
        # Left-recursive list rules (`x*`): grow the first child's list in place instead of
        # copying it at every step (quadratic otherwise).
        kept: list[Any] = children[0]
        for how, child in zip(plan[1:], children[1:], strict=True):
            if how == 1:
                kept.append(child)
            elif how == 2:
                kept.extend(child)
        return kept
    kept = []
    for how, child in zip(plan, children, strict=True):
        if how == 1:
            kept.append(child)
        elif how == 2:
            kept.extend(child)
    return kept
