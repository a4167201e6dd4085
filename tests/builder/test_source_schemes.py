"""The builder names the HTTP(S) and Git source schemes without importing their modules
(a build without such a source never loads them): the names stay the modules' own."""

from __future__ import annotations

from buildkit_py.builder import core
from buildkit_py.source.git import GIT_SCHEMES
from buildkit_py.source.http import HTTP_SCHEMES


def test_the_builders_source_schemes_are_the_modules_own() -> None:
    assert core.HTTP_SOURCE_SCHEMES == HTTP_SCHEMES
    assert core.GIT_SOURCE_SCHEMES == GIT_SCHEMES
