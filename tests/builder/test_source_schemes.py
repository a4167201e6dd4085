"""The builder names the HTTP(S) and Git source schemes without importing their modules
(a build without such a source never loads them): the names live in source/schemes.py."""

from __future__ import annotations

import subprocess
import sys


def test_the_builder_names_http_and_git_schemes_without_their_modules() -> None:
    code = (
        "import sys\n"
        "from buildkit_py.builder import core\n"
        "assert core.HTTP_SCHEMES == ('http', 'https') and core.GIT_SCHEMES == ('git',)\n"
        "loaded = [m for m in ('buildkit_py.source.http', 'buildkit_py.source.git')"
        " if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
