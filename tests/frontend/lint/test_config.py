"""Which rules run: ``# check=`` values, comments above an instruction, the build arg."""

from __future__ import annotations

import pytest

from buildkit_py.frontend.dockerfile.lint import (
    CheckOptionError,
    Linter,
    linter_for,
    parse_check_options,
)


def test_options_parse_as_buildkit() -> None:
    cfg = parse_check_options(" skip = A, B ;error=true; experimental=C ")
    assert cfg.skip == ("A", "B") and cfg.error and cfg.experimental == ("C",)
    assert parse_check_options("skip=all").skip_all
    assert parse_check_options("experimental=all").experimental_all
    assert parse_check_options("") == parse_check_options("   ")
    # Go's SplitN(..., 3): a fourth option stays in the third part's value
    assert parse_check_options("error=1;skip=A;experimental=B;x").experimental == ("B;x",)
    with pytest.raises(CheckOptionError, match='invalid check option "bogus"'):
        parse_check_options("bogus=1")
    with pytest.raises(CheckOptionError, match='invalid check option "skip"'):
        parse_check_options("skip")
    with pytest.raises(CheckOptionError, match=r'failed to parse check option "error=maybe": '
                       r'strconv.ParseBool: parsing "maybe": invalid syntax'):
        parse_check_options("error=maybe")


def _fired(lint: Linter) -> list[str]:
    return [w.rule.name for w in lint.warnings]


def test_skip_leaves_experimental_rules_to_experimental() -> None:
    lint = linter_for("skip=all", {})
    lint.run("MaintainerDeprecated", None)
    lint.run("InvalidDefinitionDescription", None, "ARG", "x")
    assert _fired(lint) == []
    lint = linter_for("skip=all;experimental=InvalidDefinitionDescription", {})
    lint.run("InvalidDefinitionDescription", None, "ARG", "x")
    assert _fired(lint) == ["InvalidDefinitionDescription"]


def test_the_build_arg_replaces_the_directive() -> None:
    lint = linter_for("skip=all;error=true", {"BUILDKIT_DOCKERFILE_CHECK": "skip=StageNameCasing"})
    lint.run("MaintainerDeprecated", None)
    lint.run("StageNameCasing", None, "A")
    assert _fired(lint) == ["MaintainerDeprecated"] and lint.error() is None
    with pytest.raises(CheckOptionError, match="failed to parse build-arg:BUILDKIT_DOCKERFILE"):
        linter_for(None, {"BUILDKIT_DOCKERFILE_CHECK": "nope"})
    with pytest.raises(CheckOptionError, match="failed to parse check options: invalid check"):
        linter_for("nope", {})
    # only the directive's first word counts
    assert linter_for("skip=A extra words", {}).config.skip == ("A",)


def test_a_comment_above_adds_to_the_config_for_that_instruction() -> None:
    lint = linter_for("error=true", {})
    here = lint.with_comments(["some text", "check=skip=MaintainerDeprecated"])
    here.run("MaintainerDeprecated", None)
    assert _fired(lint) == []
    assert lint.with_comments(["check=bogus"]) is lint  # a malformed comment is ignored
    lint.run("MaintainerDeprecated", None)
    lint.run("StageNameCasing", None, "A")
    lint.run("MaintainerDeprecated", None)
    assert lint.error() == "lint violation found for rules: MaintainerDeprecated, StageNameCasing"


def test_a_silent_linter_counts_nothing() -> None:
    """The platforms after the first of a build report nothing (as in BuildKit)."""
    lint = linter_for("error=true", {}, report=False)
    lint.run("MaintainerDeprecated", None)
    assert lint.warnings == [] and lint.error() is None
