"""Word expansion must match BuildKit's shell lexer, corner cases included."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buildkit_py.errors import DockerfileError, UserError
from buildkit_py.frontend.dockerfile.shell_lex import (
    ExpansionError,
    ShellLex,
    _Run,
    expand_heredoc_body,
)

ERR = object()  # expected: ExpansionError

ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": "", "A": "x"}

# (source, expected) with the default backslash escape.
WORD_CASES = [
    # plain text and quote removal
    ("hello", "hello"),
    ("he'll'o", "hello"),
    ("he'llo", ERR),
    ('"hel\'lo"', "hel'lo"),
    ("\"''\"", "''"),
    ("'\"hello\"'", '"hello"'),
    ('"hello', ERR),
    ("'hello", ERR),
    ("안'녕'하세요", "안녕하세요"),
    # escapes outside quotes: the next char is literal, the escape dropped
    ("he\\'llo", "he'llo"),
    ("he\\\\'llo", ERR),
    ("abc\\tdef", "abctdef"),
    ("hello\\", "hello"),
    ("hello\\\\", "hello\\"),
    ("a\\ b", "a b"),
    # escapes inside double quotes: only ", $ and the escape char
    ('"abc\\tdef"', "abc\\tdef"),
    ('"abc\\\\tdef"', "abc\\tdef"),
    ('"hello\\"', ERR),
    ('"a\\"b"', 'a"b'),
    ('"he\\$PWD"', "he$PWD"),
    ('"he\\\\$PWD"', "he\\/home"),
    # single quotes: everything literal, no escapes
    ("'abc\\tdef'", "abc\\tdef"),
    ("'hello\\'", "hello\\"),
    ("'$PWD'", "$PWD"),
    ("'\\$PWD'", "\\$PWD"),
    ("'he${XX}'", "he${XX}"),
    # $name forms
    ("he$PWD", "he/home"),
    ("$KOREAN", "한국어"),
    ("안녕$KOREAN", "안녕한국어"),
    ("he$pwd.", "he."),  # names are case-sensitive
    ('"$PWD"', "/home"),
    ("\"he'$PWD'\"", "he'/home'"),
    ("$PWD/bin:$SHELL", "/home/bin:bash"),
    ("$A_B", ""),  # the name is A_B, not A
    ("${A}_B", "x_B"),
    # literal $ rules
    ("$", "$"),
    ("a$", "a$"),
    ("$.", "$."),
    ("he$.x", "he$.x"),
    ("$ x", "$ x"),
    ("$/", "$/"),
    ('$"PWD"', "$PWD"),
    ("he\\$PWD", "he$PWD"),
    ("he\\\\$PWD", "he\\/home"),
    ("\\${}", "${}"),
    ("he\\${}xx", "he${}xx"),
    # positional and special parameters are looked up (and unset)
    ("$1", ""),
    ("he$1x", "hex"),
    ("$12x", "x"),
    ("$$", ""),
    ("a$$b", "ab"),
    ("$@x", "x"),
    ("$#", ""),
    ("$0abc", "abc"),
    ("${#}", ""),
    # ${name}
    ("he${PWD}", "he/home"),
    ("he${hi}xx", "hexx"),
    ("${A}}", "x}"),
    ('"he${PWD}"', "he/home"),
    # ${} errors
    ("${}", ERR),
    ("he${}xx", ERR),
    ("${:}", ERR),
    ("${:-x}", ERR),
    ("${{A}", ERR),
    ("he${.}", ERR),
    ("he${PWD", ERR),
    ("${A", ERR),
    ("${", ERR),
    ("${A:", ERR),
    ("${A:-x", ERR),
    ("${A=x}", ERR),
    ("${A:=x}", ERR),
    ("${A:YYY}", ERR),
    ("${#A}", ERR),
    # :- / - / :+ / +
    ("he${XXX:-000}xx", "he000xx"),
    ("he${PWD:-000}xx", "he/homexx"),
    ("${NULL:-d}", "d"),
    ("${NULL-d}", ""),
    ("${XXX-d}", "d"),
    ("${XXX:+alt}", ""),
    ("${NULL:+alt}", ""),
    ("${NULL+alt}", "alt"),
    ("${PWD:+alt}", "alt"),
    ("${PWD+alt}", "alt"),
    ("${A:-}", "x"),
    ("${XXX:-}", ""),
    # the word of a modifier is itself expanded, quoted and escaped
    ("he${XXX:-$PWD}xx", "he/homexx"),
    ("he${XXX:-${PWD:-yyy}}xx", "he/homexx"),
    ("he${XXX:-${YYY:-yyy}}xx", "heyyyxx"),
    ("he${XXX:+${PWD}}xx", "hexx"),
    ("he${PWD:+${SHELL}}xx", "hebashxx"),
    ("he${PWD:+${PWD}:}xx", "he/home:xx"),
    ("he${XXX:-\\$PWD:}xx", "he$PWD:xx"),
    ("he${XXX:-\\${PWD}z}xx", "he${PWDz}xx"),
    ("${XXX:-bbb}}", "bbb}"),
    ("${XXX:-bbb {foo}", "bbb {foo"),
    ("${XXX:-bbb ${foo}", ERR),
    ("${XXX:-'a}b'}", "a}b"),
    ('${XXX:-"a b"}', "a b"),
    ("${XXX:-a\\}b}", "a}b"),
    ("${XXX:-${}}", ERR),
    # ?, :?
    ("${PWD?}", "/home"),
    ("${NULL?}", ""),
    ("${XXX?}", ERR),
    ("${NULL:?}", ERR),
    ("${PWD:?msg}", "/home"),
    # prefix/suffix removal
    ("${PWD#/}", "home"),
    ("${PWD#*o}", "me"),
    ("${PWD##*o}", "me"),
    ("${SHELL%?h}", "ba"),
    ("${SHELL%%a*}", "b"),
    ("${SHELL%a*}", "b"),
    ("${SHELL#}", "bash"),
    ("${SHELL##}", "bash"),
    ("${SHELL%}", "bash"),
    ("${XXX#a}", ""),
    ("${PWD#nomatch}", "/home"),
    ("${PWD:#/}", ERR),
    ("${PWD:%e}", ERR),
    # replacement
    ("${PWD/o/0}", "/h0me"),
    ("${SHELL//?/-}", "----"),
    ("${PWD/#/x}", "/home"),  # no anchors: '#' is literal here
    ("${PWD/\\//|}", "|home"),
    ("${XXX/a/b}", ""),
    ("${PWD/", ERR),
    ("${PWD/a", ERR),
    ("${PWD/a/b", ERR),
]


@pytest.mark.parametrize(("source", "expected"), WORD_CASES, ids=[c[0] for c in WORD_CASES])
def test_process_word_matches_buildkit(source: str, expected: object) -> None:
    lex = ShellLex()
    if expected is ERR:
        with pytest.raises(ExpansionError):
            lex.process_word(source, ENV)
    else:
        assert lex.process_word(source, ENV) == expected


WORDS_ENV = {"hi": "hi", "space": "abc  def", "leading": "  ab c", "trailing": "ab c   "}

# (source, expected words)
WORDS_CASES = [
    ("hello", ["hello"]),
    ("hello${hi}bye", ["hellohibye"]),
    ("hello${nope}bye", ["hellobye"]),
    ("hello${space}bye", ["helloabc", "defbye"]),
    ('hello"${space}"bye', ["helloabc  defbye"]),
    ('hello "${space}"bye', ["hello", "abc  defbye"]),
    ("hello${leading}def", ["hello", "ab", "cdef"]),
    ('hello"${leading}" def', ["hello  ab c", "def"]),
    ("hello${trailing}", ["helloab", "c"]),
    ("hello${trailing}d", ["helloab", "c", "d"]),
    ('hello"${trailing}"d', ["helloab c   d"]),
    ('hello" there  "', ["hello there  "]),
    ("hello there     ", ["hello", "there"]),
    ("  lead   and\ttabs\n", ["lead", "and", "tabs"]),
    ("hello\\ there", ["hello there"]),
    ('hello\\" there', ['hello"', "there"]),
    ('hello" there', ERR),
    ('a "" b', ["a", "b"]),
    ("''", []),
    ("", []),
    ("${nope}", []),
    ("${nope:-'x y'}", ["x", "y"]),  # a $ result is split even if quoted inside ${}
    ("'$space'", ["$space"]),
    ("src/$hi dest/", ["src/hi", "dest/"]),
]


@pytest.mark.parametrize(("source", "expected"), WORDS_CASES, ids=[c[0] for c in WORDS_CASES])
def test_process_words_splits_after_expansion(source: str, expected: object) -> None:
    lex = ShellLex()
    if expected is ERR:
        with pytest.raises(ExpansionError):
            lex.process_words(source, WORDS_ENV)
    else:
        assert lex.process_words(source, WORDS_ENV) == expected


# (source, env, expected) for the pattern operators
PATTERN_CASES = [
    ("${FOO#()[]{\\}^$.\\*\\?|\\\\}", {"FOO": "()[]{}^$.*?|\\x"}, "x"),
    ("${FOO%%\\**}", {"FOO": "xx**"}, "xx"),
    ("${FOO#*x*y}", {"FOO": "xxyy"}, "y"),
    ("${FOO##*x*y}", {"FOO": "xxyy"}, ""),
    ("${FOO#*}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO##*}", {"FOO": "xxyy"}, ""),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": "x"}, "xyy"),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy"),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": "#*x"}, "yy"),  # an expanded '#' still means ##
    ("${FOO##*x}", {"FOO": "xxyy"}, "yy"),
    ("${FOO#?\\?}", {"FOO": "???y"}, "?y"),
    ("${ABC:-.}${FOO%x}${ABC:-.}", {"FOO": "xxyy"}, ".xxyy."),
    ("${FOO%%\\**\\*}", {"FOO": "a***yy*"}, "a"),
    ("${FOO%*y}", {"FOO": "xxyy"}, "xxy"),
    ("${FOO%%*y}", {"FOO": "xxyy"}, ""),
    ("${FOO%.*}", {"FOO": "1.2.3"}, "1.2"),
    ("${FOO%%.*}", {"FOO": "1.2.3"}, "1"),
    ("${FOO#*.}", {"FOO": "1.2.3"}, "2.3"),
    ("${FOO%%$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy"),
    ("${FOO#*b}", {"FOO": "a\nb"}, "a\nb"),  # * does not match a newline (Go regexp)
    ("${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}", {"FOO": "/foo*/*/*.txt", "NEEDLE": "\\*/"},
     "/foo.*/*.txt - /foo..*.txt"),
    ("${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}", {"FOO": "/tmp/tmp/bar.txt", "NEEDLE": "/tmp"},
     "/tmp/bar.txt - /bar.txt"),
    ("${FOO/$N/$R} - ${FOO//$N/$R}", {"FOO": "/a/foo/b/c.txt", "N": "/?/", "R": "/"},
     "/foo/b/c.txt - /foo/c.txt"),
    ("${FOO/$N/$R}", {"FOO": "http://google.de", "N": "http://", "R": "https://"},
     "https://google.de"),
    ("${FOO//\\//\\/}", {"FOO": "/tmp/foo.txt"}, "\\/tmp\\/foo.txt"),
    ("${FOO/$BAR/ww}", {"FOO": "xxyy", "BAR": ""}, "wwxxyy"),
    ("${FOO//$BAR/-}", {"FOO": "ab", "BAR": ""}, "-a-b-"),
    ("${FOO//*/x}", {"FOO": "abc"}, "x"),
    ("${FOO/b*/X}", {"FOO": "abcbd"}, "aX"),  # leftmost, then longest
    ("${FOO//x*/y}", {"FOO": "axb\naxc"}, "ay\nay"),
    ("${FOO///}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO///}", {}, ""),
    ("${FOO//a/$R}", {"FOO": "aXa", "R": "<$0>"}, "<a>X<a>"),  # Go template in //
    ("${FOO/a/$R}", {"FOO": "aXa", "R": "<$0>"}, "<$0>Xa"),  # but not in /
    ("${FOO//a/$R}", {"FOO": "aa", "R": "$$"}, "$$"),
    ("${FOO//a/$R}", {"FOO": "a", "R": "$x-"}, "-"),
]


@pytest.mark.parametrize(("source", "env", "expected"), PATTERN_CASES,
                         ids=[f"{i}:{c[0]}" for i, c in enumerate(PATTERN_CASES)])
def test_pattern_operators_use_shell_globs(
    source: str, env: dict[str, str], expected: str
) -> None:
    assert ShellLex().process_word(source, env) == expected


# (source, env, expected result, names found, names unset)
MATCH_CASES = [
    ("x", {"DUMMY": "d"}, "x", set(), set()),
    ("x ${UNUSED}", {"DUMMY": "d"}, "x ", set(), {"UNUSED"}),
    ("x ${FOO}", {"FOO": "y"}, "x y", {"FOO"}, set()),
    ("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", {"FOO": "xxx", "BAR": ""}, "xxx  ccc",
     {"FOO", "BAR"}, {"BAZ"}),
    ("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", {"FOO": "xxx", "BAR": ""}, "xxx bbb ccc",
     {"FOO", "BAR"}, {"BAZ"}),
    ("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", {"FOO": "xxx", "BAR": ""}, "aaa bbb ",
     {"FOO", "BAR"}, {"BAZ"}),
    ("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", {"FOO": "xxx", "BAR": ""}, "aaa  ",
     {"FOO", "BAR"}, {"BAZ"}),
    ("${FOO:-}", {}, "", set(), {"FOO"}),
    ("$A$B${C}", {"A": "1"}, "1", {"A"}, {"B", "C"}),
    ("'$A' \"$B\"", {"A": "1", "B": "2"}, "$A 2", {"B"}, set()),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": "x"}, "xyy", {"FOO", "BAR"}, set()),
    ("$1 $$", {}, " ", set(), {"1", "$"}),
]


@pytest.mark.parametrize(("source", "env", "result", "found", "unset"), MATCH_CASES,
                         ids=[c[0] for c in MATCH_CASES])
def test_process_word_with_matches_reports_used_and_unset_names(
    source: str, env: dict[str, str], result: str, found: set[str], unset: set[str]
) -> None:
    assert ShellLex().process_word_with_matches(source, env) == (result, found, unset)


# (source, env, expected detail of the error)
ERROR_CASES = [
    ("${}", {}, "syntax error: bad substitution"),
    ("${:-x}", {}, "syntax error: bad substitution"),
    ("${{x}", {}, "syntax error: bad substitution"),
    ("${", {}, "syntax error: missing '}'"),
    ("${x", {}, "syntax error: missing '}'"),
    ("${x:-abc", {}, "syntax error: missing '}'"),
    ("${x:-'abc}", {}, "syntax error: missing '}'"),
    ("${x:-${}}", {}, "syntax error: bad substitution"),
    ("${x/a", {}, "syntax error: missing '/' in ${}"),
    ("${x/a/b", {}, "syntax error: missing '}'"),
    ("${x=1}", {}, "unsupported modifier (=) in substitution"),
    ("${x:=1}", {}, "unsupported modifier (:=) in substitution"),
    ("${x:#a}", {"x": "ab"}, "unsupported modifier (:#) in substitution"),
    ("${x.}", {}, "unsupported modifier (.) in substitution"),
    ("${x?}", {}, "x: is not allowed to be unset"),
    ("${x:?}", {"x": ""}, "x: is not allowed to be empty"),
    ("${x:?need x set to $y}", {"y": "1"}, "x: need x set to 1"),
    ("${x?custom}", {}, "x: custom"),
    ("${x#\\a}", {"x": "a"}, "invalid pattern (\\a) in substitution: invalid escape '\\a'"),
    ("'abc", {}, "unexpected end of statement while looking for matching single-quote"),
    ('"abc', {}, "unexpected end of statement while looking for matching double-quote"),
]


@pytest.mark.parametrize(("source", "env", "detail"), ERROR_CASES,
                         ids=[c[0] for c in ERROR_CASES])
def test_expansion_errors_carry_buildkit_messages(
    source: str, env: dict[str, str], detail: str
) -> None:
    with pytest.raises(ExpansionError) as info:
        ShellLex().process_word(source, env)
    assert info.value.detail == detail
    assert info.value.word == source
    assert info.value.message.startswith("failed to process ")
    assert info.value.message.endswith(": " + detail)


def test_expansion_error_is_a_user_error_rendered_without_traceback() -> None:
    with pytest.raises(UserError) as info:
        ShellLex().process_word('${VERSION:?set --build-arg VERSION}', {})
    err = info.value
    assert isinstance(err, DockerfileError)
    assert err.location is None  # the converter attaches the Dockerfile location
    assert err.render() == (
        'ERROR: failed to process "${VERSION:?set --build-arg VERSION}": '
        "VERSION: set --build-arg VERSION"
    )


def test_error_message_quotes_the_word_like_go() -> None:
    with pytest.raises(ExpansionError) as info:
        ShellLex().process_word('a"b\\c${', {})
    assert info.value.message.startswith('failed to process "a\\"b\\\\c${": ')


BACKTICK_CASES = [
    ("a`$b", "a$b"),
    ("a\\$b", "a\\2"),  # backslash is an ordinary character now
    ("C:\\path\\$b", "C:\\path\\2"),
    ("a``b", "a`b"),
    ("`", ""),
    ('"a`"b"', 'a"b'),
    ('"a`$b"', "a$b"),
    ('"a\\$b"', "a\\2"),
    ('"a`xb"', "a`xb"),
    ("a` b", "a b"),
    ("${x:-`}}", "}"),
]


@pytest.mark.parametrize(("source", "expected"), BACKTICK_CASES,
                         ids=[c[0] for c in BACKTICK_CASES])
def test_backtick_escape_mode(source: str, expected: str) -> None:
    assert ShellLex("`").process_word(source, {"b": "2"}) == expected


def test_backtick_escape_protects_spaces_when_splitting() -> None:
    assert ShellLex("`").process_words("a` b c\\ d", {}) == ["a b", "c\\", "d"]


# (flags, source, expected)
MODE_CASES = [
    ({"raw_quotes": True}, "'a $b' \"c $b\"", "'a $b' \"c 2\""),
    ({"raw_quotes": True}, "x'y'z", "x'y'z"),
    ({"skip_process_quotes": True}, "'a $b' \"c $b\"", "'a 2' \"c 2\""),
    ({"skip_process_quotes": True}, "it's", "it's"),
    ({"skip_process_quotes": True}, "a\\nb \\$b \\\\", "anb $b \\"),
    ({"raw_escapes": True}, "a\\nb \\$b", "a\\nb \\$b"),
    ({"raw_escapes": True}, '"a\\xb"', "a\\\\xb"),
    ({"skip_unset_env": True}, "$b $nope ${nope} ${nope:-d} ${nope/a/b}",
     "2 $nope ${nope} ${nope:-d} ${nope/a/b}"),
    ({"skip_unset_env": True}, "${b:-d} ${nope#x}", "2 ${nope#x}"),
    ({"skip_unset_env": True}, "${nope:X}", "${nope:X}"),
]


@pytest.mark.parametrize(("flags", "source", "expected"), MODE_CASES,
                         ids=[f"{sorted(c[0])[0]}:{c[1]}" for c in MODE_CASES])
def test_lexer_modes(flags: dict[str, bool], source: str, expected: str) -> None:
    assert ShellLex("\\", **flags).process_word(source, {"b": "2"}) == expected


def test_heredoc_body_expands_vars_and_escapes_but_keeps_quotes() -> None:
    body = "echo \"hello $NAME\" 'and $NAME'\nprintf \"a\\nb\"\ncost: \\$5\n"
    assert expand_heredoc_body(body, {"NAME": "world"}) == (
        "echo \"hello world\" 'and world'\nprintf \"anb\"\ncost: $5\n"
    )


def test_heredoc_lexer_never_fails_on_unbalanced_quotes() -> None:
    assert ShellLex.for_heredoc().process_word("it's \"open", {}) == "it's \"open"


def test_escape_must_be_one_character() -> None:
    with pytest.raises(ValueError):
        ShellLex("\\\\")


def test_whitespace_splitting_uses_go_unicode_spaces() -> None:
    lex = ShellLex()
    # U+00A0 and U+3000 are spaces for Go; U+001F (a Python whitespace) is not.
    assert lex.process_words("a\u00a0b\u3000c\x1fd", {}) == ["a", "b", "c\x1fd"]
    assert lex.process_words("$v", {"v": "x\u2003y"}) == ["x", "y"]


def test_unicode_letters_continue_a_name_but_other_numerics_do_not() -> None:
    lex = ShellLex()
    assert lex.process_word("$héllo-", {"héllo": "1", "h": "2"}) == "1-"
    assert lex.process_word("$a²", {"a": "1", "a²": "2"}) == "1²"


_ALPHABET = st.sampled_from(list("ab_1$\\'\"{}:-+?#%/ *.\nxé"))


@settings(max_examples=200, deadline=None)
@given(st.lists(_ALPHABET, max_size=24).map("".join))
def test_any_input_either_expands_or_raises_expansion_error(word: str) -> None:
    lex = ShellLex()
    env = {"a": "A b", "b": "", "ab": "*x*"}
    try:
        result = lex.process_word(word, env)
    except ExpansionError:
        return
    assert isinstance(result, str)
    lex.process_words(word, env)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["$a", "${b}", "${ab}", "$c", "x", " ", "/", "$", "{", "}",
                                 "-", "1", "é", "$é"]), max_size=10).map("".join))
def test_fast_path_agrees_with_full_scanner(word: str) -> None:
    lex = ShellLex()
    env = {"a": "A b", "b": "", "ab": "z"}

    def full() -> object:
        run = _Run(lex, word, env)
        try:
            return run.word(), run.matched, run.unmatched, _Run(lex, word, env).words()
        except ExpansionError as exc:
            return exc.detail

    def public() -> object:
        try:
            return (*lex.process_word_with_matches(word, env), lex.process_words(word, env))
        except ExpansionError as exc:
            return exc.detail

    assert public() == full()


def test_expansion_of_a_large_dockerfile_is_fast() -> None:
    lex = ShellLex()
    env = {f"V{i}": f"value{i}" for i in range(40)} | {"VERSION": "1.2.3", "ARCH": "amd64"}
    words = [
        "/app/${VERSION}/bin",
        "$PATH:/opt/bin",
        '"hello ${V1} world"',
        "release-${VERSION%.*}-${ARCH}",
        "plain/path/here",
        "${V3:-default}",
    ]
    start = time.perf_counter()
    for _ in range(1000):  # ~6000 expansions, more than a 5,000-line Dockerfile needs
        for w in words:
            lex.process_word(w, env)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"{elapsed:.3f}s"  # ~0.04 s idle; generous for a busy CI box


def test_pathological_patterns_run_in_linear_time() -> None:
    lex = ShellLex()
    value = "a" * 3000
    start = time.perf_counter()
    assert lex.process_word("${V#*a*a*a*a*a*a*a*a*b}", {"V": value}) == value
    assert lex.process_word("${V%%a*a*a*a*a*a*c}", {"V": value}) == value
    assert lex.process_word("${V//a*a*a*b/x}", {"V": value[:400]}) == value[:400]
    assert time.perf_counter() - start < 2.0


def test_lexers_share_their_searches_and_the_usual_ones_exist_on_import() -> None:
    """A command server's forked child converts with the usual lexer: its searches were
    compiled when the module loaded (in the server), not again in every child."""
    from buildkit_py.frontend.dockerfile import shell_lex

    assert ("\\", False) in shell_lex._PATTERNS
    a, b = ShellLex(), ShellLex(raw_quotes=True, skip_unset_env=True)
    assert a._finders is b._finders and a._dq_finder is b._dq_finder
    heredoc = ShellLex.for_heredoc()
    assert heredoc._finders is not a._finders
    assert heredoc._finders is ShellLex.for_heredoc()._finders
    assert ShellLex("`").process_word("a`$b", {}) == "a$b"
