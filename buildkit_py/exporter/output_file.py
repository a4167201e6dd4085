"""Where a tar output's bytes go: ``dest``, replaced only once they are complete.

The bytes are written beside ``dest`` (``DEST.tmp``) and renamed over it at the end, so
a failed export leaves what was there. ``-`` is stdout. A ``dest`` that exists and is
neither a regular file nor a directory (``/dev/null``, a FIFO, a terminal) is opened and
written in place, as buildx writes every dest: a rename would leave a regular file where
the device was (``dest=/dev/null`` once replaced the machine's ``/dev/null``).
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterator
from typing import BinaryIO


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
    if _special(dest):
        with open(dest, "wb") as f:
            yield f
        return
    tmp = dest + ".tmp"
    try:
        with open(tmp, "wb") as f:
            yield f
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
