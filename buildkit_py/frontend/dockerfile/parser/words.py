"""Small lexical helpers shared by the parse-tree builder: BuildKit's quoting rules for flag
words, ENV/LABEL/ARG words, heredoc delimiters and JSON arrays, and Go's notion of space."""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Go's unicode.IsSpace, which BuildKit uses to trim lines and arguments.
GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"  # noqa: E501

_SURROGATE = re.compile("[\ud800-\udfff]")


def unquote_flag(word: str, escape: str) -> str:
    """A flag word as BuildKit stores it: quotes removed, escapes applied.

    Unlike argument words, the escape character works inside both quote kinds here, and a
    lone escape character at the end is dropped.
    """
    if '"' not in word and "'" not in word and escape not in word:
        return word
    out: list[str] = []
    quote = ""
    i, n = 0, len(word)
    while i < n:
        ch = word[i]
        if quote and ch == quote:
            quote = ""
        elif not quote and ch in "\"'":
            quote = ch
        elif ch == escape:
            if i + 1 < n:
                i += 1
                out.append(word[i])
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def finish_word(word: str, escape: str) -> str:
    """Drop a lone escape character ending the last word of a line (BuildKit skips it).

    Only called for the word that ends the line; a pair such as ``\\\\`` is kept whole, and
    inside single quotes the escape character is an ordinary character.
    """
    if not word.endswith(escape):
        return word
    quote = ""
    i, n = 0, len(word)
    while i < n:
        ch = word[i]
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote == '"':
                if i + 1 == n:
                    return word[:-1]
                i += 1
        elif ch in "\"'":
            quote = ch
        elif ch == escape:
            if i + 1 == n:
                return word[:-1]
            i += 1
        i += 1
    return word


def decode_json_strings(text: str) -> list[str]:
    """Decode a JSON array already known (from the grammar) to hold only strings.

    Go replaces invalid UTF-8 and lone surrogates with U+FFFD; so do we.
    """
    values: list[str] = json.loads(text)
    if not text.isascii() or "\\u" in text:
        values = [_SURROGATE.sub("\ufffd", v) for v in values]
    return values


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _go_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # Go's decoder rejects out-of-range numbers: not valid JSON there
        raise ValueError(text)
    return value


def is_non_string_json_array(text: str) -> bool:
    """True when ``text`` is a complete JSON array with a non-string element.

    BuildKit rejects those (``RUN [1, "a"]``) instead of falling back to shell form.
    """
    try:
        value = json.loads(
            text, parse_constant=_reject_constant, parse_float=_go_float, parse_int=_go_float
        )
    except (ValueError, RecursionError):
        return False
    return isinstance(value, list) and any(not isinstance(v, str) for v in value)


def shell_unquote(word: str) -> tuple[str, int]:
    """Remove shell quoting from a heredoc delimiter word (escape is always ``\\``).

    Returns the unquoted text and how many quote characters were removed.
    """
    out: list[str] = []
    removed = 0
    quote = ""
    i, n = 0, len(word)
    while i < n:
        ch = word[i]
        if quote == "'":
            if ch == "'":
                quote = ""
                removed += 1
            else:
                out.append(ch)
        elif quote == '"':
            if ch == '"':
                quote = ""
                removed += 1
            elif ch == "\\" and i + 1 < n and word[i + 1] in '"\\$`':
                i += 1
                out.append(word[i])
            else:
                out.append(ch)
        elif ch in "\"'":
            quote = ch
            removed += 1
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(word[i])
        else:
            out.append(ch)
        i += 1
    return "".join(out), removed
