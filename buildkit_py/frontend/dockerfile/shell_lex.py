"""Builder-side word expansion, behaving like BuildKit's shell lexer.

BuildKit expands variables in most Dockerfile instructions itself (not via a shell);
this module reproduces that lexer's observable behaviour, quirks included:

* ``$name``, ``${name}``; ``$`` + digits reads every digit as a (never set) positional
  name; ``$`` + one of ``@*#?-$!0`` reads that single char as a name (so ``$$`` is the
  unset variable ``$``, i.e. empty); ``$`` before anything else stays a literal ``$``.
* ``${v:-w} ${v-w} ${v:+w} ${v+w} ${v:?m} ${v?m}``; ``w``/``m`` may contain quotes and
  nested expansions. ``${v#p} ${v##p} ${v%p} ${v%%p}`` strip a glob prefix/suffix and
  ``${v/p/r} ${v//p/r}`` replace; in ``p`` only ``*`` and ``?`` are special (``\\*``,
  ``\\?``, ``\\\\`` escape; ``\\}``/``\\/`` protect the delimiters). Like Go's regexp,
  ``*`` and ``?`` never match a newline, and ``$`` templates in the replacement of
  ``//`` are interpreted (``$$`` -> ``$``, ``$0`` -> the match, other names -> empty).
* Single quotes are literal; in double quotes the escape char only escapes ``"``,
  ``$`` and itself; unquoted, it makes the next char literal (and is dropped).
* ``process_words`` splits on unquoted, unescaped whitespace *after* expansion, so a
  value with spaces yields several words unless it is quoted.

Errors raise :class:`ExpansionError` (a :class:`~buildkit_py.errors.DockerfileError`
without a location; the converter attaches one). Its message has BuildKit's form,
``failed to process "<word>": <detail>``; ``detail`` holds the inner part. One
deliberate difference: an unclosed ``${name`` reports ``missing '}'`` where BuildKit
prints ``unsupported modifier (\ufffd)``.

The scanner jumps between special characters with a precompiled character-class search
and glob patterns run on a small NFA, so nothing here can backtrack exponentially.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import Final

from buildkit_py.errors import DockerfileError
from buildkit_py.gostrings import go_quote

__all__ = ["ExpansionError", "ShellLex", "expand_heredoc_body"]


class ExpansionError(DockerfileError):
    """A word could not be expanded (bad substitution, unterminated quote, ``${v:?}``)."""

    def __init__(self, message: str, *, detail: str = "", word: str = "") -> None:
        super().__init__(message)
        self.detail = detail or message
        self.word = word


# Each nested ${...} costs a few Python frames; BuildKit (Go, growable stacks) expands
# hundreds of levels, so the interpreter's default limit (1000) is raised for expansion.
# Beyond it the word is refused with a clear error rather than a crash.
_NESTING_FRAMES: Final = 20_000
_TOO_DEEP: Final = "variable substitutions nested too deeply"


def _allow_deep_nesting() -> None:
    if sys.getrecursionlimit() < _NESTING_FRAMES:
        sys.setrecursionlimit(_NESTING_FRAMES)


class _Fail(Exception):
    """Internal: an expansion error before it is wrapped with the word being processed."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


# Go's unicode.IsSpace: Latin-1 spaces plus the White_Space property above U+00FF.
_GO_SPACES: Final = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_GO_SPACE_SET: Final = frozenset(_GO_SPACES)
_GO_SPACE_RUN: Final = re.compile("[" + re.escape(_GO_SPACES) + "]+")
_SPECIAL_PARAMS: Final = frozenset("@*#?-$!0")
_NAME_RUN: Final = re.compile(r"\w+")
# $name / ${name} references of the common, unambiguous ASCII kind (fast path).
_SIMPLE_REF: Final = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")

_LIT: Final = 0
_ANY: Final = 1
_STAR: Final = 2
_Token = tuple[int, str]


def _is_name_char(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or ch.isdecimal()


# --- glob patterns of ${v#p} ${v%p} ${v/p/r} -----------------------------------------


def _compile_glob(pattern: str) -> list[_Token]:
    """Tokenise a substitution pattern; only ``*``/``?`` are wildcards, ``\\`` escapes."""
    tokens: list[_Token] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            # Consecutive stars match the same set of strings as one.
            if not tokens or tokens[-1][0] != _STAR:
                tokens.append((_STAR, ""))
        elif ch == "?":
            tokens.append((_ANY, ""))
        elif ch == "\\":
            if i < n and pattern[i] in "}/":
                continue  # the escape only protected a ${} delimiter
            if i >= n:
                raise _Fail(
                    f"invalid pattern ({pattern}) in substitution: invalid escape '\\\ufffd'")
            nxt = pattern[i]
            i += 1
            if nxt not in "*?\\":
                raise _Fail(
                    f"invalid pattern ({pattern}) in substitution: invalid escape '\\{nxt}'")
            tokens.append((_LIT, nxt))
        else:
            tokens.append((_LIT, ch))
    return tokens


def _closure(states: set[int], tokens: list[_Token]) -> set[int]:
    # A star may match nothing, so its state also stands for the state after it.
    extra = [s + 1 for s in states if s < len(tokens) and tokens[s][0] == _STAR]
    while extra:
        s = extra.pop()
        if s not in states:
            states.add(s)
            if s < len(tokens) and tokens[s][0] == _STAR:
                extra.append(s + 1)
    return states


def _match_ends(tokens: list[_Token], text: str, start: int) -> list[int]:
    """All end offsets of matches of ``tokens`` beginning at ``start``, ascending."""
    final = len(tokens)
    states = _closure({0}, tokens)
    ends: list[int] = []
    if final in states:
        ends.append(start)
    for pos in range(start, len(text)):
        ch = text[pos]
        nxt: set[int] = set()
        for s in states:
            if s == final:
                continue
            kind, lit = tokens[s]
            if kind == _LIT:
                if ch == lit:
                    nxt.add(s + 1)
            elif ch != "\n":
                nxt.add(s + 1 if kind == _ANY else s)
        if not nxt:
            break
        states = _closure(nxt, tokens)
        if final in states:
            ends.append(pos + 1)
    return ends


def _find_leftmost(tokens: list[_Token], text: str, start: int) -> tuple[int, int] | None:
    """Leftmost match at or after ``start``, longest at that position (Go leftmost-first
    with greedy stars, which for glob-only patterns is exactly this)."""
    n = len(text)
    first_lit = tokens[0][1] if tokens and tokens[0][0] == _LIT else None
    s = start
    while s <= n:
        if first_lit is not None:
            s = text.find(first_lit, s)
            if s < 0:
                return None
        ends = _match_ends(tokens, text, s)
        if ends:
            return s, ends[-1]
        s += 1
    return None


def _reverse_pattern(pattern: str) -> str:
    """Reverse a pattern keeping ``\\x`` escape pairs in order (``a\\*c`` -> ``c\\*a``)."""
    out: list[str] = []
    i, last = 0, len(pattern) - 1
    while i <= last:
        if pattern[i] == "\\" and i != last:
            out.append(pattern[i : i + 2])
            i += 2
        else:
            out.append(pattern[i])
            i += 1
    out.reverse()
    return "".join(out)


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    ends = _match_ends(_compile_glob(pattern), value, 0)
    if not ends:
        return value
    return value[ends[-1] if greedy else ends[0] :]


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # Shortest/longest suffix == shortest/longest prefix of the reversed strings.
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


def _go_template(template: str, match: str) -> str:
    """Go's Regexp.Expand for a regexp without groups: ``$0``/``${0}`` is the match."""
    if "$" not in template:
        return template
    out: list[str] = []
    i, n = 0, len(template)
    while i < n:
        j = template.find("$", i)
        if j < 0:
            out.append(template[i:])
            break
        out.append(template[i:j])
        if j + 1 < n and template[j + 1] == "$":
            out.append("$")
            i = j + 2
            continue
        k = j + 1
        brace = k < n and template[k] == "{"
        if brace:
            k += 1
        name_start = k
        while k < n and (template[k] == "_" or template[k].isalpha() or template[k].isdecimal()):
            k += 1
        name = template[name_start:k]
        if not name or (brace and (k >= n or template[k] != "}")):
            out.append("$")  # malformed reference: the $ is literal
            i = j + 1
            continue
        if brace:
            k += 1
        i = k
        if name == "0":
            out.append(match)
    return "".join(out)


def _replace(pattern: str, value: str, replacement: str, replace_all: bool) -> str:
    tokens = _compile_glob(pattern)
    if not replace_all:
        found = _find_leftmost(tokens, value, 0)
        if found is None:
            return value
        return value[: found[0]] + replacement + value[found[1] :]
    # Go's ReplaceAllString: non-overlapping matches, an empty match right after a
    # previous match is not replaced, and the search always advances.
    out: list[str] = []
    last_end = 0
    search = 0
    n = len(value)
    while search <= n:
        found = _find_leftmost(tokens, value, search)
        if found is None:
            break
        a, b = found
        out.append(value[last_end:a])
        if b > last_end or a == 0:
            out.append(_go_template(replacement, value[a:b]))
        last_end = b
        width = 1 if search < n else 0
        if search + width > b:
            search += width
        elif search + 1 > b:
            search += 1
        else:
            search = b
    out.append(value[last_end:])
    return "".join(out)


# --- the lexer ------------------------------------------------------------------------


_Patterns = tuple[dict[str | None, re.Pattern[str]], re.Pattern[str], re.Pattern[str]]
_PATTERNS: dict[tuple[str, bool], _Patterns] = {}


def _patterns(escape: str, skip_process_quotes: bool) -> _Patterns:
    """A lexer's searches (read-only, shared by every lexer of that escape and quoting)."""
    key = (escape, skip_process_quotes)
    found = _PATTERNS.get(key)
    if found is None:
        base = "$" + escape + ("" if skip_process_quotes else "'\"")
        found = ({stop: re.compile("[" + re.escape(base + (stop or "")) + "]")
                  for stop in (None, "}", "/")},
                 re.compile("[" + re.escape('"$' + escape) + "]"),
                 re.compile("[" + re.escape(escape + ("" if skip_process_quotes else "'\""))
                            + "]"))
        _PATTERNS[key] = found  # a race only compiles twice: the same patterns
    return found


# The usual lexer's, made on import: a command server's forked children (which convert,
# unlike its warm-up) then find them made instead of compiling them each time.
_patterns("\\", False)


class ShellLex:
    """Expands words the way BuildKit does for one escape character.

    ``raw_quotes`` keeps quote characters in the result (quotes still delimit);
    ``skip_process_quotes`` treats quotes as ordinary characters (used for COPY/ADD
    heredoc bodies); ``raw_escapes`` keeps the escape character; ``skip_unset_env``
    leaves references to unset variables untouched. Instances are immutable and safe
    to share between threads.
    """

    __slots__ = (
        "_dq_finder",
        "_finders",
        "_not_simple",
        "escape",
        "raw_escapes",
        "raw_quotes",
        "skip_process_quotes",
        "skip_unset_env",
    )

    def __init__(
        self,
        escape: str = "\\",
        *,
        raw_quotes: bool = False,
        raw_escapes: bool = False,
        skip_process_quotes: bool = False,
        skip_unset_env: bool = False,
    ) -> None:
        if len(escape) != 1:
            raise ValueError(f"escape must be one character, got {escape!r}")
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_process_quotes = skip_process_quotes
        self.skip_unset_env = skip_unset_env
        self._finders, self._dq_finder, self._not_simple = _patterns(
            escape, skip_process_quotes)

    @classmethod
    def for_heredoc(cls) -> ShellLex:
        """The lexer BuildKit uses for COPY/ADD heredoc bodies: ``$var`` and ``\\``
        escapes are processed, quote characters are kept as ordinary text."""
        return cls("\\", skip_process_quotes=True)

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """Expand one word; quotes are removed, whitespace is kept."""
        if self._finders[None].search(word) is None:
            return word
        fast = self._expand_simple(word, env, None, None)
        if fast is not None:
            return fast
        return _Run(self, word, env).word()

    def process_word_with_matches(
        self, word: str, env: Mapping[str, str]
    ) -> tuple[str, set[str], set[str]]:
        """Expand one word; also return the names found in ``env`` and those looked up
        but unset (the latter feed the UndefinedVar check)."""
        matched: set[str] = set()
        unmatched: set[str] = set()
        if self._finders[None].search(word) is None:
            return word, matched, unmatched
        fast = self._expand_simple(word, env, matched, unmatched)
        if fast is not None:
            return fast, matched, unmatched
        run = _Run(self, word, env)
        return run.word(), run.matched, run.unmatched

    def process_words(self, text: str, env: Mapping[str, str]) -> list[str]:
        """Expand, then split on unquoted whitespace (BuildKit's ProcessWords)."""
        if self._finders[None].search(text) is None:
            return [w for w in _GO_SPACE_RUN.split(text) if w]
        fast = self._expand_simple(text, env, None, None)
        if fast is not None:
            # Without quotes or escapes every piece is splittable.
            return [w for w in _GO_SPACE_RUN.split(fast) if w]
        return _Run(self, text, env).words()

    def _expand_simple(
        self,
        word: str,
        env: Mapping[str, str],
        matched: set[str] | None,
        unmatched: set[str] | None,
    ) -> str | None:
        """Expand a word whose only specials are plain ``$name``/``${name}``
        references, or return None when the full scanner is needed."""
        if self.skip_unset_env or not word.isascii() or self._not_simple.search(word):
            return None
        parts = _SIMPLE_REF.split(word)
        if word.count("$") != (len(parts) - 1) // 3:
            return None  # some $ is not a simple reference
        out = [parts[0]]
        for i in range(1, len(parts), 3):
            name = parts[i] or parts[i + 1]
            value = env.get(name)
            if value is None:
                if unmatched is not None:
                    unmatched.add(name)
            else:
                if matched is not None:
                    matched.add(name)
                out.append(value)
            out.append(parts[i + 2])
        return "".join(out)


_HEREDOC_LEX: Final = ShellLex.for_heredoc()


def expand_heredoc_body(body: str, env: Mapping[str, str]) -> str:
    """Expand an unquoted COPY/ADD heredoc body (see :meth:`ShellLex.for_heredoc`)."""
    return _HEREDOC_LEX.process_word(body, env)


class _Run:
    """State of one expansion: a cursor over the source plus lookup bookkeeping."""

    __slots__ = ("env", "lex", "matched", "n", "pos", "raw_escapes", "text", "unmatched")

    def __init__(self, lex: ShellLex, text: str, env: Mapping[str, str]) -> None:
        self.lex = lex
        self.text = text
        self.n = len(text)
        self.pos = 0
        self.env = env
        self.raw_escapes = lex.raw_escapes
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()

    # public entry points

    def word(self) -> str:
        _allow_deep_nesting()
        try:
            return self._stop_on(None, self.lex.raw_escapes, None)
        except _Fail as exc:
            raise self._wrap(exc) from None
        except RecursionError:
            raise self._wrap(_Fail(_TOO_DEEP)) from None

    def words(self) -> list[str]:
        _allow_deep_nesting()
        segments: list[tuple[str, bool]] = []
        try:
            self._stop_on(None, self.lex.raw_escapes, segments)
        except _Fail as exc:
            raise self._wrap(exc) from None
        except RecursionError:
            raise self._wrap(_Fail(_TOO_DEEP)) from None
        return _split_segments(segments)

    def _wrap(self, exc: _Fail) -> ExpansionError:
        return ExpansionError(
            f"failed to process {go_quote(self.text)}: {exc.detail}",
            detail=exc.detail,
            word=self.text,
        )

    # scanning

    def _stop_on(
        self, stop: str | None, raw_escapes: bool, segments: list[tuple[str, bool]] | None
    ) -> str:
        """Process until ``stop`` (consumed) or the end; ``segments`` collects
        (text, splittable) pieces for word splitting at the top level."""
        saved = self.raw_escapes
        self.raw_escapes = raw_escapes
        try:
            return self._scan(stop, raw_escapes, segments)
        finally:
            self.raw_escapes = saved

    def _scan(
        self, stop: str | None, raw_escapes: bool, segments: list[tuple[str, bool]] | None
    ) -> str:
        text, n = self.text, self.n
        finder = self.lex._finders[stop]
        escape = self.lex.escape
        out: list[str] = []
        pos = self.pos
        while pos < n:
            m = finder.search(text, pos)
            j = n if m is None else m.start()
            if j > pos:
                chunk = text[pos:j]
                out.append(chunk)
                if segments is not None:
                    segments.append((chunk, True))
                pos = j
                if pos >= n:
                    break
            ch = text[pos]
            if ch == stop:
                self.pos = pos + 1
                return "".join(out)
            if ch == "$":
                self.pos = pos
                value = self._dollar()
                splittable = True
            elif ch == escape:
                pos += 1
                if raw_escapes:
                    out.append(ch)
                    if segments is not None:
                        segments.append((ch, False))
                if pos >= n:
                    break  # a trailing escape char is dropped
                value = text[pos]
                out.append(value)
                if segments is not None:
                    segments.append((value, False))
                pos += 1
                continue
            elif ch == "'":
                self.pos = pos
                value = self._single_quote()
                splittable = False
            else:
                self.pos = pos
                value = self._double_quote()
                splittable = False
            pos = self.pos
            out.append(value)
            if segments is not None:
                segments.append((value, splittable))
        self.pos = n
        if stop is not None:
            raise _Fail(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out)

    def _single_quote(self) -> str:
        start = self.pos + 1
        end = self.text.find("'", start)
        if end < 0:
            self.pos = self.n
            raise _Fail("unexpected end of statement while looking for matching single-quote")
        self.pos = end + 1
        body = self.text[start:end]
        return "'" + body + "'" if self.lex.raw_quotes else body

    def _double_quote(self) -> str:
        text, n = self.text, self.n
        escape = self.lex.escape
        finder = self.lex._dq_finder
        raw_quotes = self.lex.raw_quotes
        out: list[str] = ['"'] if raw_quotes else []
        pos = self.pos + 1
        while True:
            m = finder.search(text, pos)
            if m is None:
                self.pos = n
                raise _Fail(
                    "unexpected end of statement while looking for matching double-quote")
            j = m.start()
            if j > pos:
                out.append(text[pos:j])
            ch = text[j]
            if ch == '"':
                self.pos = j + 1
                if raw_quotes:
                    out.append('"')
                return "".join(out)
            if ch == "$":
                self.pos = j
                out.append(self._dollar())
                pos = self.pos
                continue
            # The escape char only escapes '"', '$' and itself; otherwise it stays.
            if self.raw_escapes:
                out.append(ch)
            pos = j + 1
            if pos < n and text[pos] in ('"', "$", escape):
                out.append(text[pos])
                pos += 1
            elif pos < n:
                out.append(ch)

    def _name(self) -> str:
        text, n, pos = self.text, self.n, self.pos
        if pos >= n:
            return ""
        ch = text[pos]
        if ch.isdecimal():
            end = pos + 1
            while end < n and text[end].isdecimal():
                end += 1
            self.pos = end
            return text[pos:end]
        if ch in _SPECIAL_PARAMS:
            self.pos = pos + 1
            return ch
        m = _NAME_RUN.match(text, pos)
        if m is None:
            return ""
        end = m.end()
        if not text[pos:end].isascii():
            # \w is slightly wider than Go's letters+digits; re-check char by char.
            end = pos
            while end < n and _is_name_char(text[end]):
                end += 1
        self.pos = end
        return text[pos:end]

    def _lookup(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None:
            self.unmatched.add(name)
        else:
            self.matched.add(name)
        return value

    def _dollar(self) -> str:
        text, n = self.text, self.n
        skip_unset = self.lex.skip_unset_env
        self.pos += 1
        if self.pos >= n or text[self.pos] != "{":
            name = self._name()
            if not name:
                return "$"
            value = self._lookup(name)
            if value is None:
                return "$" + name if skip_unset else ""
            return value
        self.pos += 1
        if self.pos >= n:
            raise _Fail("syntax error: missing '}'")
        if text[self.pos] in "{}:":
            raise _Fail("syntax error: bad substitution")
        name = self._name()
        if self.pos >= n:
            # BuildKit reports an unsupported modifier here; the real problem is this.
            raise _Fail("syntax error: missing '}'")
        ch = text[self.pos]
        self.pos += 1
        if ch == "}":
            value = self._lookup(name)
            if value is None:
                return "${" + name + "}" if skip_unset else ""
            return value
        if ch == "/":
            return self._substitute(name)
        modifier = ch
        null_is_unset = False
        if ch == ":":
            null_is_unset = True
            if self.pos >= n:
                raise _Fail("syntax error: missing '}'")
            ch = text[self.pos]
            self.pos += 1
            modifier += ch
        elif ch not in "+-?#%":
            raise _Fail(f"unsupported modifier ({modifier}) in substitution")
        raw = ch in "#%"
        if null_is_unset and raw:
            raise _Fail(f"unsupported modifier ({modifier}) in substitution")
        word = self._word_until("}", raw, "syntax error: missing '}'")
        value = self._lookup(name)
        if value is None and skip_unset:
            return "${" + name + modifier + word + "}"
        unset_or_null = value is None or (null_is_unset and value == "")
        if ch == "-":
            return word if unset_or_null else (value or "")
        if ch == "+":
            return "" if unset_or_null else word
        if ch == "?":
            if value is None:
                raise _Fail(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise _Fail(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if ch in "#%":
            greedy = word.startswith(ch)
            if greedy:
                word = word[1:]
            if ch == "%":
                return _trim_suffix(word, value or "", greedy)
            return _trim_prefix(word, value or "", greedy)
        raise _Fail(f"unsupported modifier ({modifier}) in substitution")

    def _word_until(self, stop: str, raw_escapes: bool, eof_message: str) -> str:
        try:
            return self._stop_on(stop, raw_escapes, None)
        except _Fail:
            if self.pos >= self.n:
                raise _Fail(eof_message) from None
            raise

    def _substitute(self, name: str) -> str:
        replace_all = self.pos < self.n and self.text[self.pos] == "/"
        if replace_all:
            self.pos += 1
        pattern = self._word_until("/", True, "syntax error: missing '/' in ${}")
        replacement = self._word_until("}", True, "syntax error: missing '}'")
        value = self._lookup(name)
        if value is None and self.lex.skip_unset_env:
            return "${" + name + "/" + pattern + "/" + replacement + "}"
        return _replace(pattern, value or "", replacement, replace_all)


def _split_segments(segments: list[tuple[str, bool]]) -> list[str]:
    """Split expanded pieces into words. Splittable pieces (plain text and ``$``
    results) break on whitespace; raw pieces (quoted or escaped) never do. Only words
    with text are emitted, so ``a "" b`` gives two words, as in BuildKit."""
    words: list[str] = []
    buf: list[str] = []
    size = 0
    for text, splittable in segments:
        if not splittable or not any(c in _GO_SPACE_SET for c in text):
            if text or not splittable:
                buf.append(text)
                size += len(text)
            continue
        for idx, piece in enumerate(_GO_SPACE_RUN.split(text)):
            if idx > 0 and size:
                words.append("".join(buf))
                buf, size = [], 0
            if piece:
                buf.append(piece)
                size += len(piece)
    if size:
        words.append("".join(buf))
    return words
