"""The S-expression dump of BuildKit's parser tests, with Go's ``%q`` string quoting."""

from __future__ import annotations

from typing import TYPE_CHECKING

from buildkit_py.gostrings import go_quote, go_quote_list

if TYPE_CHECKING:
    from buildkit_py.frontend.dockerfile.parser.nodes import Node, ParseResult


def dump_node(node: Node) -> str:
    """One instruction, without the surrounding parentheses."""
    parts = [node.name]
    if node.flags:
        parts.append(go_quote_list(node.flags))
    parts.extend(go_quote(a) for a in node.args)
    if node.sub is not None:
        parts.append("(" + dump_node(node.sub) + ")")
    return " ".join(parts).strip()


def dump_ast(result: ParseResult) -> str:
    """The whole parse, one ``(instruction ...)`` per line, without a trailing newline."""
    return "\n".join("(" + dump_node(n) + ")" for n in result.nodes)
