"""Attaching Dockerfile locations to errors raised while an instruction is converted."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from buildkit_py.errors import BuildError, DockerfileError, SourceLocation, UserError
from buildkit_py.frontend.dockerfile.shell_lex import ShellLex


@contextmanager
def located(location: SourceLocation | None) -> Iterator[None]:
    """Re-raise any user error without a location as a DockerfileError at ``location``."""
    try:
        yield
    except DockerfileError as exc:
        if exc.location is None:
            exc.location = location
        raise
    except BuildError as exc:
        if exc.step is None:
            raise DockerfileError(exc.message, location, hint=exc.hint) from exc
        # a failed step (e.g. loading a base image's metadata) keeps its framed name
        if exc.location is None:
            exc.location = location
        raise
    except UserError as exc:
        raise DockerfileError(exc.message, location, hint=exc.hint) from exc


def expand(lex: ShellLex, word: str, env: Mapping[str, str]) -> str:
    """Expand one word (errors get their location from :func:`located`)."""
    return lex.process_word(word, env)


def expand_optional(lex: ShellLex, word: str | None, env: Mapping[str, str]) -> str | None:
    return None if word is None else lex.process_word(word, env)
