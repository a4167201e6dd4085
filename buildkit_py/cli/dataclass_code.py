"""Compiled dataclass methods kept between processes, as ``__pycache__`` keeps bytecode.

``@dataclass`` writes the source of the methods it generates (``__init__``, ``__repr__``,
``__eq__``, ``__hash__``, and ``__setattr__``/``__delattr__`` for a frozen class) and
compiles it with ``exec`` when the class is defined: ~0.5 ms per frozen class on Python
3.11, ~100 ms of a fresh ``bkpy build`` for the ~190 classes it loads (a third of its
imports). The source depends only on the class's fields and options, so the code compiled
from it can be kept: a later process runs the stored code objects (~5 us each).

How: ``dataclasses`` calls ``exec`` by its global name, so giving that module an ``exec``
of its own reaches every such call without replacing any of its functions. Ours looks the
source text up in a table (source -> code) read from
``buildkit_py/__pycache__/dataclass-code.<cache tag>.bin``, compiles what is missing
exactly as ``exec`` would (file name ``<string>``) and runs the code. A hit is keyed by
the whole source, so it is the code ``exec`` would have compiled; a table written by
another interpreter (its magic number) is ignored. Nothing depends on the table: one that
cannot be read or written only means compiling, as before.

Standard library only: :mod:`launch` installs it before the CLI is imported;
:mod:`write_dataclass_code` writes it for the whole package at set-up.
"""

from __future__ import annotations

import builtins
import dataclasses
import importlib.util
import marshal
import os
import sys
from types import CodeType
from typing import Any

_MAGIC = b"bkpy-dataclass-code 1\n" + importlib.util.MAGIC_NUMBER
# Entries kept when the table is written: those this process used, plus the ones read,
# unless that makes more than this (code edits leave old sources behind).
_MAX_ENTRIES = 4000


class _Table:
    def __init__(self, path: str) -> None:
        self.path = path
        self.codes: dict[str, CodeType] = {}
        self.used: set[str] = set()
        self.added = False
        self.loaded = False

    def load(self) -> None:
        self.loaded = True
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError:
            return
        if not data.startswith(_MAGIC):
            return
        try:
            codes = marshal.loads(data[len(_MAGIC):])
        except (EOFError, ValueError, TypeError):
            return
        if isinstance(codes, dict):
            self.codes = codes

    def code(self, source: str) -> CodeType:
        if not self.loaded:  # on the first dataclass: `bkpy --version` defines none
            self.load()
        code = self.codes.get(source)
        if code is None:
            code = compile(source, "<string>", "exec")
            self.codes[source] = code
            self.added = True
        self.used.add(source)
        return code

    def save(self) -> None:
        if not self.added:
            return
        keep = self.codes
        if len(keep) > _MAX_ENTRIES:
            keep = {s: c for s, c in keep.items() if s in self.used}
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(_MAGIC + marshal.dumps(keep))
            os.replace(tmp, self.path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return
        self.added = False


_table: _Table | None = None


def _exec(source: Any, globals: Any = None, locals: Any = None, /) -> None:
    if _table is not None and isinstance(source, str):
        source = _table.code(source)
    builtins.exec(source, globals, locals)


def table_path() -> str:
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(package, "__pycache__",
                        f"dataclass-code.{sys.implementation.cache_tag}.bin")


def install(path: str | None = None) -> None:
    """Serve ``dataclasses``' ``exec`` calls from the table at ``path`` (default
    :func:`table_path`); classes defined before this are unaffected."""
    global _table
    if _table is not None:
        return
    _table = _Table(path or table_path())
    dataclasses.exec = _exec  # type: ignore[attr-defined]


def save(*, always: bool = False) -> None:
    """Write the table if this process compiled anything new (atomically); not under
    ``PYTHONDONTWRITEBYTECODE``, which keeps ``__pycache__`` unwritten, unless ``always``
    (an explicit set-up step, as ``compileall`` writes bytecode whatever that says)."""
    if _table is not None and (always or not sys.flags.dont_write_bytecode):
        _table.save()

