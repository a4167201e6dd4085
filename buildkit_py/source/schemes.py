"""The LLB source schemes of the HTTP(S) and Git sources, apart from their modules: the
builder's handler table names them without importing those (a build without such a
source never loads them)."""

from __future__ import annotations

HTTP_SCHEMES = ("http", "https")  # source/http.py
GIT_SCHEMES = ("git",)  # source/git.py
