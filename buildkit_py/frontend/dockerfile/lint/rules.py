"""The 22 rules of BuildKit's Dockerfile linter, one table entry each.

A rule is data: its BuildKit name, description, documentation URL, how its message is
worded (``detail``) and whether BuildKit keeps it experimental (off unless ``# check=
experimental=NAME|all``). The checks that fire a rule live where the fact is known: the
instruction loader, :mod:`.static` (whole-file checks) or the converter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from buildkit_py.gostrings import go_quote

_DOCS = "https://docs.docker.com/go/dockerfile/rule/"


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    url: str
    detail: Callable[..., str]
    experimental: bool = False

    def message(self, *args: str) -> str:
        return self.detail(*args)


def _suggest(message: str, suggestion: str) -> str:
    """BuildKit's ``(did you mean X?)`` tail, when there is a suggestion."""
    return f"{message} (did you mean {suggestion}?)" if suggestion else message


_TABLE = (
    Rule("StageNameCasing", "Stage names should be lowercase", _DOCS + "stage-name-casing/",
         lambda name: f"Stage name '{name}' should be lowercase"),
    Rule("FromAsCasing", "The 'as' keyword should match the case of the 'from' keyword",
         _DOCS + "from-as-casing/",
         lambda from_, as_: f"'{as_}' and '{from_}' keywords' casing do not match"),
    Rule("NoEmptyContinuation", "Empty continuation lines will become errors in a future release",
         _DOCS + "no-empty-continuation/", lambda: "Empty continuation line"),
    Rule("ConsistentInstructionCasing",
         "All commands within the Dockerfile should use the same casing (either upper or lower)",
         _DOCS + "consistent-instruction-casing/",
         lambda cmd, casing: f"Command '{cmd}' should match the case of the command majority "
                             f"({casing})"),
    Rule("DuplicateStageName", "Stage names should be unique", _DOCS + "duplicate-stage-name/",
         lambda name: f"Duplicate stage name {go_quote(name)}, stage names should be unique"),
    Rule("ReservedStageName", "Reserved words should not be used as stage names",
         _DOCS + "reserved-stage-name/",
         lambda name: "Stage name should not use the same name as reserved stage "
                      f"{go_quote(name)}"),
    Rule("JSONArgsRecommended",
         "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related "
         "to OS signals", _DOCS + "json-args-recommended/",
         lambda instr: f"JSON arguments recommended for {instr} to prevent unintended behavior "
                       "related to OS signals"),
    Rule("MaintainerDeprecated",
         "The MAINTAINER instruction is deprecated, use a label instead to define an image author",
         _DOCS + "maintainer-deprecated/",
         lambda: "Maintainer instruction is deprecated in favor of using label"),
    Rule("UndefinedArgInFrom", "FROM command must use declared ARGs",
         _DOCS + "undefined-arg-in-from/",
         lambda arg, near: _suggest(f"FROM argument '{arg}' is not declared", near)),
    Rule("WorkdirRelativePath",
         "Relative workdir without an absolute workdir declared within the build can have "
         "unexpected results if the base image changes", _DOCS + "workdir-relative-path/",
         lambda wd: f"Relative workdir {go_quote(wd)} can have unexpected results if the base "
                    "image changes"),
    Rule("UndefinedVar", "Variables should be defined before their use",
         _DOCS + "undefined-var/",
         lambda var, near: _suggest(f"Usage of undefined variable '${var}'",
                                    f"${near}" if near else "")),
    Rule("MultipleInstructionsDisallowed",
         "Multiple instructions of the same type should not be used in the same stage",
         _DOCS + "multiple-instructions-disallowed/",
         lambda instr: f"Multiple {instr} instructions should not be used in the same stage "
                       "because only the last one will be used"),
    Rule("LegacyKeyValueFormat",
         "Legacy key/value format with whitespace separator should not be used",
         _DOCS + "legacy-key-value-format/",
         lambda cmd: f'"{cmd} key=value" should be used instead of legacy "{cmd} key value" '
                     "format"),
    # BuildKit gives this one no documentation URL.
    Rule("InvalidBaseImagePlatform",
         "Base image platform does not match expected target platform", "",
         lambda image, expected, actual: f"Base image {image} was pulled with platform "
                                         f"{go_quote(actual)}, expected {go_quote(expected)} "
                                         "for current build"),
    Rule("RedundantTargetPlatform",
         "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the "
         "default behavior", _DOCS + "redundant-target-platform/",
         lambda var: f"Setting platform to predefined {var} in FROM is redundant as this is the "
                     "default behavior"),
    Rule("SecretsUsedInArgOrEnv", "Sensitive data should not be used in the ARG or ENV commands",
         _DOCS + "secrets-used-in-arg-or-env/",
         lambda instr, key: "Do not use ARG or ENV instructions for sensitive data "
                            f"({instr} {go_quote(key)})"),
    Rule("InvalidDefaultArgInFrom",
         "Default value for global ARG results in an empty or invalid base image name",
         _DOCS + "invalid-default-arg-in-from/",
         lambda base: f"Default value for ARG {base} results in empty or invalid base image "
                      "name"),
    Rule("FromPlatformFlagConstDisallowed", "FROM --platform flag should not use a constant value",
         _DOCS + "from-platform-flag-const-disallowed/",
         lambda plat: f"FROM --platform flag should not use constant value {go_quote(plat)}"),
    Rule("CopyIgnoredFile", "Attempting to Copy file that is excluded by .dockerignore",
         _DOCS + "copy-ignored-file/",
         lambda cmd, path: f"Attempting to {cmd} file {go_quote(path)} that is excluded by "
                           ".dockerignore"),
    Rule("InvalidDefinitionDescription",
         "Comment for build stage or argument should follow the format: `# <arg/stage name> "
         "<description>`. If this is not intended to be a description comment, add an empty "
         "line or comment between the instruction and the comment.",
         _DOCS + "invalid-definition-description/",
         lambda instr, name: f"Comment for {instr} should follow the format: `# {name} "
                             "<description>`", experimental=True),
    Rule("ExposeProtoCasing", "Protocol in EXPOSE instruction should be lowercase",
         _DOCS + "expose-proto-casing/",
         lambda port: f"Defined protocol '{port}' in EXPOSE instruction should be lowercase"),
    Rule("ExposeInvalidFormat",
         "IP address and host-port mapping should not be used in EXPOSE instruction. This will "
         "become an error in a future release", _DOCS + "expose-invalid-format/",
         lambda port: "EXPOSE instruction should not define an IP address or host-port "
                      f"mapping, found '{port}'"),
)

RULES: dict[str, Rule] = {rule.name: rule for rule in _TABLE}


def rule(name: str) -> Rule:
    """The rule called ``name`` (a KeyError names a rule BuildKit does not have)."""
    return RULES[name]
