"""Path resolution shared by every op builder: a relative path in an op means a path
below the working dir of the state the op is built on."""

from __future__ import annotations

import posixpath


def join_path(base: str, path: str) -> str:
    """Resolve ``path`` against directory ``base``; keeps a trailing slash."""
    joined = posixpath.normpath(posixpath.join("/", base, path))
    if path.endswith("/") and joined != "/":
        joined += "/"
    return joined
