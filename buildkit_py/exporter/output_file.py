"""Where a tar output's bytes go: ``dest``, replaced only once they are complete.

The bytes are written beside ``dest`` (``DEST.tmp``) and renamed over it at the end, so
a failed export leaves what was there; missing parent folders are made, as buildx makes
them. ``-`` is stdout. A ``dest`` that exists and is neither a regular file nor a
directory (``/dev/null``, a FIFO, a terminal) is opened and written in place, as buildx
writes every dest: a rename would leave a regular file where the device was
(``dest=/dev/null`` once replaced the machine's ``/dev/null``). A directory, or a place
that cannot be written, is the user's error, with buildx's words for the former.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from buildkit_py.errors import UserError


def _special(dest: str) -> bool:
    try:
        mode = os.stat(dest).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


@contextlib.contextmanager
def output_file(dest: str) -> Iterator[BinaryIO]:
    """``dest`` opened for the output's bytes (see the module's docstring)."""
    if dest == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    if os.path.isdir(dest):
        raise UserError(f"destination file {dest} is a directory")
    special = _special(dest)
    target = dest if special else dest + ".tmp"
    try:
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        f = open(target, "wb")
    except OSError as err:
        raise UserError(f"cannot write {dest}: {err.strerror}") from None
    try:
        with f:
            yield f
        if not special:
            os.replace(target, dest)
    finally:
        if not special and os.path.exists(target):
            os.unlink(target)
