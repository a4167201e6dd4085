"""The rule table: BuildKit's 22 rules, their URLs, which one is experimental."""

from __future__ import annotations

import re

from buildkit_py.frontend.dockerfile.lint import RULES

BUILDKIT_RULES = {
    "StageNameCasing", "FromAsCasing", "NoEmptyContinuation", "ConsistentInstructionCasing",
    "DuplicateStageName", "ReservedStageName", "JSONArgsRecommended", "MaintainerDeprecated",
    "UndefinedArgInFrom", "WorkdirRelativePath", "UndefinedVar",
    "MultipleInstructionsDisallowed", "LegacyKeyValueFormat", "InvalidBaseImagePlatform",
    "RedundantTargetPlatform", "SecretsUsedInArgOrEnv", "InvalidDefaultArgInFrom",
    "FromPlatformFlagConstDisallowed", "CopyIgnoredFile", "InvalidDefinitionDescription",
    "ExposeProtoCasing", "ExposeInvalidFormat",
}


def _kebab(name: str) -> str:
    """``JSONArgsRecommended`` -> ``json-args-recommended``."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", name).lower()


def test_the_table_holds_buildkits_rules() -> None:
    assert set(RULES) == BUILDKIT_RULES and len(RULES) == 22


def test_urls_follow_the_docs_and_one_rule_has_none() -> None:
    for name, rule in RULES.items():
        if name == "InvalidBaseImagePlatform":  # BuildKit gives it no URL
            assert rule.url == ""
            continue
        assert rule.url == f"https://docs.docker.com/go/dockerfile/rule/{_kebab(name)}/", name


def test_only_invalid_definition_description_is_experimental() -> None:
    assert {n for n, r in RULES.items() if r.experimental} == {"InvalidDefinitionDescription"}


def test_messages_quote_as_go() -> None:
    assert RULES["DuplicateStageName"].message("a\"b") == \
        'Duplicate stage name "a\\"b", stage names should be unique'
    assert RULES["UndefinedVar"].message("FOO", "FOOO") == \
        "Usage of undefined variable '$FOO' (did you mean $FOOO?)"
    assert RULES["UndefinedArgInFrom"].message("TAG", "TAGS") == \
        "FROM argument 'TAG' is not declared (did you mean TAGS?)"
    assert RULES["UndefinedArgInFrom"].message("TAG", "") == "FROM argument 'TAG' is not declared"
