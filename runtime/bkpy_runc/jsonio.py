"""JSON without importing ``json`` (which pulls in ``re``): the C scanner and encoder.

``bkpy-runc run`` is on the build hot path; ``json``+``re`` cost ~10 ms of start-up.
Invalid documents fall back to ``json.loads`` so the error message stays precise.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~15 ms of start-up; annotations are lazy
    from typing import Any


class _Context:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict[str, Any] = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return float(name.replace("Infinity", "inf"))


_scan = _json.make_scanner(_Context())  # type: ignore[arg-type]
_WS = " \t\n\r"


def loads(text: str) -> Any:
    start = len(text) - len(text.lstrip(_WS))
    try:
        value, end = _scan(text, start)
        _Context.memo.clear()
        if text[end:].strip(_WS) == "":
            return value
    except Exception:  # the slow path below reports the real error
        _Context.memo.clear()
    import json

    return json.loads(text)


def _unserializable(value: Any) -> Any:
    raise TypeError(f"cannot serialize {type(value).__name__}")


# The C encoder json.dumps uses, without importing json: compact, keys in document order.
_encode = _json.make_encoder(
    None, _unserializable, _json.encode_basestring_ascii, None, ": ", ", ", False, False, True)


def compact(value: Any) -> str:
    """``value`` as compact JSON text, fast (for keys: same document, same text)."""
    return "".join(_encode(value, 0))


def dumps(value: Any, indent: str | None = None, _level: int = 0) -> str:
    """Serialize dicts/lists/str/int/float/bool/None, optionally indented like runc."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return str(_json.encode_basestring_ascii(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        items = [f"{dumps(str(k))}: {dumps(v, indent, _level + 1)}" for k, v in value.items()]
        return _join(items, "{", "}", indent, _level)
    if isinstance(value, list | tuple):
        return _join([dumps(v, indent, _level + 1) for v in value], "[", "]", indent, _level)
    raise TypeError(f"cannot serialize {type(value).__name__}")


def _join(items: list[str], open_: str, close: str, indent: str | None, level: int) -> str:
    if not items:
        return open_ + close
    if indent is None:
        return open_ + ", ".join(items) + close
    inner = "\n" + indent * (level + 1)
    return open_ + inner + ("," + inner).join(items) + "\n" + indent * level + close
