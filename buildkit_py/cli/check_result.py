"""What ``bkpy build --call check`` prints, as buildx prints a lint result.

Text: ``Check complete, N warnings have been found!`` then each warning (rule, URL,
message, the Dockerfile lines, the file named as the user gave it: ``-f`` or
CONTEXT/Dockerfile); ``Check complete, no warnings found.`` when clean.
``format=json``: BuildKit's lint JSON. The exit status is BuildKit's
``result.statuscode`` (1 when a rule fired); an error (a broken Dockerfile, or
``error=true`` with findings) is printed after the warnings with its lines, on stderr.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click


def source_name(context: str, file: str | None) -> str | None:
    """buildx's DockerfileMappingSrc: ``-f`` as given (``stdin`` for ``-``), else the
    context's Dockerfile path; None for a context read from stdin."""
    if file == "-":
        return "stdin"
    if file:
        return file
    if context == "-":
        return None
    return os.path.normpath(os.path.join(context, "Dockerfile"))


def print_check_result(metadata: dict[str, Any], fmt: str, filename: str | None) -> int:
    """Print the result; the exit status buildx would give."""
    # reason: the lint package is only needed here, after a check ran
    from buildkit_py.frontend.dockerfile.lint import render_error, render_text

    raw = metadata.get("result.json") or "{}"
    doc: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else raw
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        click.echo(render_text(doc, filename), nl=False)
    if doc.get("buildError"):
        sys.stdout.flush()
        click.echo(f"ERROR: {render_error(doc, filename)}", err=True)
        return 1
    try:
        return int(metadata.get("result.statuscode") or 0)
    except ValueError:
        return 1


def exit_with(status: int) -> None:
    if status:
        sys.stdout.flush()
        sys.exit(status)
