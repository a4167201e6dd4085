"""Lint rules of BuildKit's Dockerfile linter that bkpy reports, by their BuildKit names.

A rule firing never changes the build; it becomes a warning with the rule's name, its
message and the instruction's line, which ``bkpy build`` prints as buildx does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from buildkit_py.gostrings import go_quote


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    url: str


SECRETS_USED_IN_ARG_OR_ENV = Rule(
    "SecretsUsedInArgOrEnv",
    "Sensitive data should not be used in the ARG or ENV commands",
    "https://docs.docker.com/go/dockerfile/rule/secrets-used-in-arg-or-env/")

# A secret-looking name has one of these words as its whole, first or last
# underscore-separated part (API_KEY, DATABASE_PASSWORD, GITHUB_TOKEN, AUTH), unless an
# allow word marks it as harmless (PUBLIC_KEY, SECRET_FILE, TOKEN_VERSION).
_SECRET_WORDS = re.compile(
    r"(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)"
    r"(?:_|$)", re.IGNORECASE)
_ALLOW_WORDS = re.compile(r"(?:_|^)(?:public|file|version)(?:_|$)", re.IGNORECASE)


def secrets_used(instruction: str, name: str) -> str | None:
    """SecretsUsedInArgOrEnv's message when ``ARG``/``ENV`` sets a secret-looking name."""
    if _SECRET_WORDS.search(name) and not _ALLOW_WORDS.search(name):
        return f"Do not use ARG or ENV instructions for sensitive data ({instruction} " \
               f"{go_quote(name)})"
    return None
