"""Build :class:`Node` objects while the grammar parses (no intermediate tree).

Each ``*_instr`` rule of ``grammar/dockerfile.lark`` reduces to a callback below; the
callbacks only reshape tokens into BuildKit's argument shapes and apply its quoting rules.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from buildkit_py.frontend.dockerfile.parser.lalr import LINE, POS, TYPE, VALUE, Tok
from buildkit_py.frontend.dockerfile.parser.nodes import Node
from buildkit_py.frontend.dockerfile.parser.words import (
    decode_json_strings,
    finish_word,
    is_non_string_json_array,
    unquote_flag,
)
from buildkit_py.gostrings import go_quote

# The text being parsed, for the rare callbacks that need raw characters between tokens.
# A context variable keeps concurrent parses in different threads apart.
current_text: ContextVar[str] = ContextVar("current_text", default="")

NON_STRING_ARRAY = "when using JSON array syntax, arrays must be comprised of strings only"
NON_STRING_HINT = 'quote every element of the JSON array (["sleep", "1"]) or use the shell form'



class NodeError(Exception):
    """An instruction the grammar accepts but BuildKit's parser rejects."""

    def __init__(self, message: str, line: int, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line  # 1-based line of the text handed to the parser
        self.hint = hint


def _rest_of_line(token: Tok) -> str:
    text = current_text.get()
    start = token[POS]
    end = text.find("\n", start)
    return text[start:] if end < 0 else text[start:end]


class NodeBuilder:
    """Rule callbacks producing :class:`Node` objects (one builder per escape character)."""

    def __init__(self, escape: str) -> None:
        self.escape = escape

    # ------------------------------------------------------------ shared pieces
    def _head(self, children: list[Any]) -> tuple[str, list[str], int]:
        """Split the keyword and its flags from the argument tokens."""
        i = 1
        flags: list[str] = []
        n = len(children)
        while i < n and type(children[i]) is tuple and children[i][TYPE] == "FLAG":
            flags.append(unquote_flag(children[i][VALUE], self.escape))
            i += 1
        return children[0][VALUE], flags, i

    @staticmethod
    def _cmd_args(tok: Tok) -> tuple[list[str], bool]:
        if tok[TYPE] == "JSON_ARRAY":
            return decode_json_strings(tok[VALUE]), True
        if tok[VALUE].startswith("[") and is_non_string_json_array(tok[VALUE]):
            raise NodeError(NON_STRING_ARRAY, tok[LINE], NON_STRING_HINT)
        return [tok[VALUE]], False

    def _maybe_json_node(self, children: list[Any]) -> Node:
        keyword, flags, i = self._head(children)
        if i == len(children):
            return Node(keyword, flags, [])
        args, is_json = self._cmd_args(children[i])
        return Node(keyword, flags, args, is_json)

    def _json_or_words_node(self, children: list[Any]) -> Node:
        keyword, flags, i = self._head(children)
        rest = children[i:]
        if not rest:
            return Node(keyword, flags, [])
        first = rest[0]
        if first[TYPE] == "JSON_ARRAY":
            return Node(keyword, flags, decode_json_strings(first[VALUE]), True)
        if first[VALUE].startswith("[") and is_non_string_json_array(_rest_of_line(first)):
            raise NodeError(NON_STRING_ARRAY, first[LINE], NON_STRING_HINT)
        return Node(keyword, flags, [t[VALUE] for t in rest])

    def _words_node(self, children: list[Any]) -> Node:
        keyword, flags, i = self._head(children)
        return Node(keyword, flags, [t[VALUE] for t in children[i:]])

    def _text_node(self, children: list[Any]) -> Node:
        keyword, flags, i = self._head(children)
        return Node(keyword, flags, [t[VALUE] for t in children[i:]])

    def _key_value_node(self, children: list[Any], what: str) -> Node:
        keyword, flags, i = self._head(children)
        rest = children[i:]
        if not rest:
            return Node(keyword, flags, [])
        first = rest[0]
        if first[TYPE] == "LEGACY_KEY":
            if len(rest) == 1:
                raise NodeError(
                    f"{what} must have two arguments",
                    first[LINE],
                    f"write {what} {first[VALUE]}=<value>",
                )
            return Node(keyword, flags, [first[VALUE], rest[1][VALUE], ""])
        args: list[str] = []
        last = len(rest) - 1
        for n, tok in enumerate(rest):
            word = finish_word(tok[VALUE], self.escape) if n == last else tok[VALUE]
            key, eq, value = word.partition("=")
            if not eq:
                raise NodeError(
                    f"Syntax error - can't find = in {go_quote(word)}. "
                    "Must be of the form: name=value",
                    tok[LINE],
                    "every word of the name=value form needs a '=' (quote values with spaces)",
                )
            args += (key, value, "=")
        return Node(keyword, flags, args)

    # ------------------------------------------------------------ rules
    def start(self, children: list[Node]) -> list[Node]:
        return children

    def heredoc_scan(self, children: list[Tok]) -> list[str]:
        return [t[VALUE] for t in children]

    def run_instr(self, children: list[Any]) -> Node:
        return self._maybe_json_node(children)

    cmd_instr = entrypoint_instr = shell_instr = run_instr

    def copy_instr(self, children: list[Any]) -> Node:
        return self._json_or_words_node(children)

    add_instr = volume_instr = copy_instr

    def from_instr(self, children: list[Any]) -> Node:
        return self._words_node(children)

    expose_instr = from_instr

    def maintainer_instr(self, children: list[Any]) -> Node:
        return self._text_node(children)

    user_instr = workdir_instr = stopsignal_instr = maintainer_instr

    def env_instr(self, children: list[Any]) -> Node:
        return self._key_value_node(children, "ENV")

    def label_instr(self, children: list[Any]) -> Node:
        return self._key_value_node(children, "LABEL")

    def arg_instr(self, children: list[Any]) -> Node:
        keyword, flags, i = self._head(children)
        words = [t[VALUE] for t in children[i:]]
        if words:
            words[-1] = finish_word(words[-1], self.escape)
        return Node(keyword, flags, words)

    def healthcheck_instr(self, children: list[Any]) -> Node:
        keyword, flags, i = self._head(children)
        rest = children[i:]
        if not rest:
            return Node(keyword, flags, [])
        if len(rest) == 1:
            return Node(keyword, flags, [rest[0][VALUE]])
        args, is_json = self._cmd_args(rest[1])
        return Node(keyword, flags, [rest[0][VALUE], *args], is_json)

    def onbuild_instr(self, children: list[Any]) -> Node:
        keyword, flags, i = self._head(children)
        node = Node(keyword, flags, [])
        if i < len(children):
            sub: Node = children[i]
            node.sub = sub
        return node

    def unknown_instr(self, children: list[Any]) -> Node:
        keyword, flags, _ = self._head(children)
        return Node(keyword, flags, [""])
