"""Locate the Lark grammar and build (once per process, cached on disk) its LALR parsers.

The wheel ships the top-level ``grammar/`` directory as ``buildkit_py/_grammar/``; an
editable install reads ``<repo>/grammar/``. Lark compiles the grammar into LALR(1) tables
(~0.2 s, plus importing Lark); the tables are plain data, marshalled into
``$XDG_CACHE_HOME/bkpy`` (or ``~/.cache/bkpy``) under a hash of the grammar files, so later
processes load them in a millisecond without importing Lark at all. An unwritable cache
directory only costs that rebuild.
"""

from __future__ import annotations

import marshal
import os
import sys
import threading
import zlib
from typing import Any

from buildkit_py.frontend.dockerfile.parser.lalr import LalrParser, tables_from_lark

GRAMMAR_FILES = {"\\": "dockerfile.lark", "`": "dockerfile_backtick.lark"}
START_RULES = ["start", "heredoc_scan"]
_FORMAT = "bkpy-lalr-tables-2"  # bump when the cached table layout changes

_lock = threading.Lock()
_parsers: dict[str, LalrParser] = {}


def grammar_dir() -> str:
    """The directory holding ``dockerfile.lark`` (installed wheel first, then the repo)."""
    # Plain paths first: importlib.resources costs ~40 ms to import on the CLI start path.
    here = os.path.dirname(os.path.abspath(__file__))
    package = os.path.normpath(os.path.join(here, *[os.pardir] * 3))
    for candidate in (os.path.join(package, "_grammar"),
                      os.path.join(package, os.pardir, "grammar")):
        if os.path.isfile(os.path.join(candidate, "dockerfile.lark")):
            return os.path.normpath(candidate)
    from importlib import resources  # reason: ~15 ms, only for a zip-imported package

    try:  # pragma: no cover - only a zip-imported package gets here
        packaged = resources.files("buildkit_py").joinpath("_grammar")
        if packaged.joinpath("dockerfile.lark").is_file():
            return str(packaged)
    except (ModuleNotFoundError, OSError):  # pragma: no cover - zip imports
        pass
    raise FileNotFoundError("Dockerfile grammar not found in buildkit_py/_grammar nor grammar/")


def cache_dir() -> str | None:
    """Where compiled tables are cached, or None when no such directory can be made."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "bkpy")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return None
    return path if os.access(path, os.W_OK) else None


def get_parser(escape: str, callbacks: Any) -> LalrParser:
    """The parser for files whose escape character is ``escape``.

    ``callbacks`` (one method per named rule) build the result while parsing; they must not
    keep per-parse state, since the parser is shared by every thread of the process.
    """
    parser = _parsers.get(escape)
    if parser is not None:
        return parser
    with _lock:
        parser = _parsers.get(escape)
        if parser is None:
            parser = LalrParser(_tables(escape), callbacks)
            _parsers[escape] = parser
    return parser


def compile_loaded_parsers() -> None:
    """Compile all lexer patterns of the parsers built so far (see LalrParser.compile_all)."""
    for parser in list(_parsers.values()):
        parser.compile_all()


def _tables(escape: str) -> dict[str, Any]:
    """The compiled tables: from the cache when it matches the grammar, else built by Lark."""
    directory = grammar_dir()
    path = os.path.join(directory, GRAMMAR_FILES[escape])
    # A cheap content key (no hashlib import on the CLI start path): CRC-32 and sizes of the
    # grammar files, the table format and the Python version (marshal is version-specific).
    key = f"{_FORMAT} {sys.version_info[:2]}".encode()
    crc = zlib.crc32(key)
    for name in sorted(GRAMMAR_FILES.values()):
        with open(os.path.join(directory, name), "rb") as g:
            data = g.read()
        crc = zlib.crc32(data, crc)
        key += b" %d" % len(data)
    where = cache_dir()
    stem = GRAMMAR_FILES[escape].removesuffix(".lark")
    tag = f"{crc:08x}{zlib.crc32(key):08x}"
    cached = os.path.join(where, f"{stem}-{tag}.tables") if where else None
    if cached is not None:
        try:
            with open(cached, "rb") as f:
                tables: dict[str, Any] = marshal.load(f)
            if tables.get("format") == _FORMAT:
                return tables
        except Exception:  # missing, stale or torn cache file: rebuild it below
            pass
    tables = _build(path)
    if cached is not None:
        _save(tables, cached)
    return tables


def _build(path: str) -> dict[str, Any]:
    import lark  # reason: Lark (~25 ms) only compiles the tables; later runs load them

    parser = lark.Lark.open(
        path,
        parser="lalr",
        lexer="contextual",
        start=START_RULES,
        maybe_placeholders=False,
    )
    tables = tables_from_lark(parser)
    tables["lark_version"] = lark.__version__
    tables["format"] = _FORMAT
    return tables


def _save(tables: dict[str, Any], target: str) -> None:
    """Write the tables atomically, so concurrent processes never read half a file."""
    import tempfile  # reason: ~3 ms (shutil, bz2, lzma): only when the tables are compiled

    try:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".tables-")
        try:
            with os.fdopen(fd, "wb") as f:
                marshal.dump(tables, f)
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass  # unwritable cache: the next process builds the tables again
