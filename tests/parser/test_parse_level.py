"""Parse-level behaviour (reference §1.1-1.6): lines, directives, continuation, heredocs."""

from __future__ import annotations

import pytest

from buildkit_py.errors import DockerfileError
from buildkit_py.frontend.dockerfile import dump_ast, parse_dockerfile
from buildkit_py.frontend.dockerfile.parser import detect_syntax, parse_check_directive
from buildkit_py.gostrings import go_quote


def dump(text: str | bytes) -> str:
    return dump_ast(parse_dockerfile(text))


def test_bom_and_crlf_are_stripped() -> None:
    result = parse_dockerfile(b"\xef\xbb\xbfFROM a\r\nRUN b \\\r\n  c\r\n")
    assert dump_ast(result) == '(from "a")\n(run "b   c")'
    assert result.lines == ["FROM a", "RUN b \\", "  c"]


def test_keywords_are_case_insensitive_and_dumped_lower() -> None:
    assert dump("fRoM a AS b\nrun x\n") == '(from "a" "AS" "b")\n(run "x")'


def test_comments_are_text_after_the_first_word() -> None:
    assert dump("FROM a\nRUN echo a # b\n  # indented comment\n") == (
        '(from "a")\n(run "echo a # b")'
    )


def test_line_numbers_cover_continuations_and_heredocs() -> None:
    result = parse_dockerfile("FROM a\n\nRUN x \\\n  y\nRUN <<EOF\nbody\nEOF\nUSER u\n")
    spans = [(n.name, n.start_line, n.end_line) for n in result.nodes]
    assert spans == [("from", 1, 1), ("run", 3, 4), ("run", 5, 7), ("user", 8, 8)]


def test_directives_are_read_only_at_the_top() -> None:
    result = parse_dockerfile("# syntax = docker/dockerfile:1.7\n#CHECK=skip=all\nFROM a\n")
    assert [(d.name, d.value, d.line) for d in result.directives] == [
        ("syntax", "docker/dockerfile:1.7", 1),
        ("check", "skip=all", 2),
    ]
    late = parse_dockerfile("FROM a\n# escape=`\nRUN a \\\n b\n")
    assert late.directives == [] and late.escape == "\\"


def test_blank_line_or_unknown_directive_ends_directive_scanning() -> None:
    assert parse_dockerfile("\n# escape=`\nFROM a\n").escape == "\\"
    assert parse_dockerfile("# foo=bar\n# escape=`\nFROM a\n").escape == "\\"


def test_directive_lines_are_not_comments_of_the_first_instruction() -> None:
    node = parse_dockerfile("# syntax=x\n# real comment\nFROM a\n").nodes[0]
    assert node.prev_comment == ["real comment"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# escape=\\\n# escape=\\\nFROM a\n", "only one escape parser directive can be used"),
        ("# syntax=a\n# SYNTAX=b\nFROM a\n", "only one syntax parser directive can be used"),
        ("# escape=ab\nFROM a\n", "invalid escape token 'ab' does not match ` or \\"),
    ],
)
def test_directive_errors(text: str, message: str) -> None:
    with pytest.raises(DockerfileError) as info:
        parse_dockerfile(text)
    assert info.value.message == message


def test_backtick_escape_changes_continuation_and_word_escapes() -> None:
    text = "# escape=`\nFROM a\nRUN dir c:\\ `\n  /w\nENV P=c:\\x Q=`\"q\n"
    assert dump(text) == (
        '(from "a")\n(run "dir c:\\\\   /w")\n(env "P" "c:\\\\x" "=" "Q" "`\\"q" "=")'
    )


def test_empty_continuation_lines_warn() -> None:
    result = parse_dockerfile("FROM a\nRUN a \\\n\n  b\n")
    assert dump_ast(result) == '(from "a")\n(run "a   b")'
    [warning] = result.warnings
    assert warning.rule == "NoEmptyContinuation"
    assert warning.location.start_line == 4
    assert "Empty continuation line" in warning.message


def test_escaped_escape_at_end_of_line_is_not_a_continuation() -> None:
    assert dump("FROM a\nRUN a \\\\\nUSER b\n") == '(from "a")\n(run "a \\\\\\\\")\n(user "b")'


def test_lone_continuation_characters_give_an_empty_instruction() -> None:
    assert dump("FROM a\n\\\n \n") == '(from "a")\n("")'


def test_flags_are_unquoted_and_end_at_double_dash() -> None:
    assert dump('FROM a\nCOPY --chown="a b" --x=\\"y -- --z w\n') == (
        '(from "a")\n(copy ["--chown=a b" "--x=\\"y"] "--z" "w")'
    )


def test_json_fallback_and_non_string_error() -> None:
    assert dump("FROM a\nRUN ['x']\nRUN [\"x\"] y\n") == (
        "(from \"a\")\n(run \"['x']\")\n(run \"[\\\"x\\\"] y\")"
    )
    for bad in ('RUN [1]', 'CMD ["a", null]', 'COPY ["a", ["b"]]', 'HEALTHCHECK CMD [true]'):
        with pytest.raises(DockerfileError, match="arrays must be comprised of strings only"):
            parse_dockerfile(f"FROM a\n{bad}\n")


def test_json_that_go_rejects_falls_back_to_shell_form() -> None:
    # NaN is not JSON and 1e400 overflows Go's float64: both are shell form, not errors.
    assert dump("FROM a\nRUN [NaN]\nRUN [1e400]\n") == '(from "a")\n(run "[NaN]")\n(run "[1e400]")'


def test_env_legacy_and_key_value_forms() -> None:
    assert dump("FROM a\nENV k  rest  of line\nENV a=1 b=\"2 3\"\n") == (
        '(from "a")\n(env "k" "rest  of line" "")\n(env "a" "1" "=" "b" "\\"2 3\\"" "=")'
    )


def test_heredoc_bodies_are_stored_on_the_node() -> None:
    result = parse_dockerfile(
        "FROM a\nRUN <<-EOT cat <<'RAW' 2<<\"E\"\n\tone\n\tEOT\n$two\nRAW\nthree\nE\n"
    )
    node = result.nodes[1]
    docs = [(h.name, h.content, h.expand, h.chomp, h.file_descriptor) for h in node.heredocs]
    assert docs == [
        ("EOT", "\tone\n", True, True, 0),
        ("RAW", "$two\n", False, False, 0),
        ("E", "three\n", False, False, 2),
    ]
    assert node.heredocs[0].body() == "one\n"
    assert (node.start_line, node.end_line) == (2, 8)


def test_heredocs_only_on_run_copy_add_in_shell_form() -> None:
    result = parse_dockerfile('FROM a\nCMD <<EOF\nRUN ["x", "<<EOF"]\nEOF\n')
    assert [n.name for n in result.nodes] == ["from", "cmd", "run", "eof"]
    assert all(not n.heredocs for n in result.nodes)


def test_onbuild_wrapping_run_reads_heredoc() -> None:
    node = parse_dockerfile("FROM a\nONBUILD RUN <<EOF\nx\nEOF\n").nodes[1]
    assert node.sub is not None and node.sub.name == "run"
    assert [h.content for h in node.heredocs] == ["x\n"]


def test_unterminated_heredoc_names_its_lines() -> None:
    with pytest.raises(DockerfileError) as info:
        parse_dockerfile("FROM a\nRUN <<EOF\nx\n")
    err = info.value
    assert err.message == "unterminated heredoc"
    assert err.location is not None
    assert (err.location.start_line, err.location.end_line) == (2, 3)
    assert err.hint and "EOF" in err.hint


def test_first_error_in_file_order_wins() -> None:
    # The bad JSON on line 2 comes before the unterminated heredoc on line 3.
    with pytest.raises(DockerfileError, match="arrays must be comprised"):
        parse_dockerfile("FROM a\nRUN [1]\nRUN <<EOF\n")


def test_empty_and_comment_only_files_have_no_instructions() -> None:
    for text in ("", "\n\n", "# just a comment\n", "# syntax=x\n"):
        with pytest.raises(DockerfileError, match="file with no instructions"):
            parse_dockerfile(text)


def test_overlong_line_is_rejected() -> None:
    with pytest.raises(DockerfileError, match="greater than max allowed size of 65535") as info:
        parse_dockerfile("FROM a\nRUN " + "x" * 70000 + "\n")
    assert info.value.location is not None and info.value.location.start_line == 2


def test_invalid_utf8_survives_and_dumps_as_hex() -> None:
    expected = '(from "a")\n(label "k" "\\xff\u2665" "=")'
    assert dump(b"FROM a\nLABEL k=\xff\xe2\x99\xa5\n") == expected


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("plain", '"plain"'),
        ('" \\ \b \f \n \r \t \v \x00 \x7f', '"\\" \\\\ \\b \\f \\n \\r \\t \\v \\x00 \\x7f"'),
        ("\u00a0\u200b\U0001f600\u2028", '"\\u00a0\\u200b\U0001f600\\u2028"'),
        ("\udcff", '"\\xff"'),
    ],
)
def test_go_quote(value: str, quoted: str) -> None:
    assert go_quote(value) == quoted


def test_detect_syntax_accepts_buildkit_forms() -> None:
    assert detect_syntax("#!/usr/bin/env bk\n# syntax=docker/dockerfile:1 extra\nFROM a\n") == (
        "docker/dockerfile:1"
    )
    assert detect_syntax("// syntax=foo/bar\nFROM a\n") == "foo/bar"
    assert detect_syntax('{"syntax": "json/front"}') == "json/front"
    assert detect_syntax("FROM a\n# syntax=late\n") is None


def test_check_directive_values() -> None:
    cfg = parse_check_directive("skip=JSONArgsRecommended, StageNameCasing;error=true")
    assert cfg.skip == ("JSONArgsRecommended", "StageNameCasing") and cfg.error
    assert parse_check_directive("skip=all").skip_all
    with pytest.raises(ValueError):
        parse_check_directive("bogus=1")
