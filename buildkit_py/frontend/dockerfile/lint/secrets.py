"""SecretsUsedInArgOrEnv's test: does an ARG or ENV name look like it holds a secret?

A secret-looking name has one of BuildKit's words as its whole, first or last
underscore-separated part (API_KEY, DATABASE_PASSWORD, GITHUB_TOKEN, AUTH), unless an
allow word marks it as harmless (PUBLIC_KEY, SECRET_FILE, TOKEN_VERSION).
"""

from __future__ import annotations

import re

_SECRET_WORDS = re.compile(
    r"(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)"
    r"(?:_|$)", re.IGNORECASE)
_ALLOW_WORDS = re.compile(r"(?:_|^)(?:public|file|version)(?:_|$)", re.IGNORECASE)


def looks_secret(name: str) -> bool:
    return bool(_SECRET_WORDS.search(name)) and not _ALLOW_WORDS.search(name)
