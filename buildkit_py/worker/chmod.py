"""``--chmod`` values: octal (``755``) or symbolic (``u=rwX,go=rX``, ``+x``, ``g=u``)."""

from __future__ import annotations

import re
import stat
from collections.abc import Callable

from buildkit_py.errors import UserError

_WHO = {"u": 0o4700, "g": 0o2070, "o": 0o1007}
_CLAUSE = re.compile(r"^([ugoa]*)([-+=])([rwxXst]*|[ugo])$")

ModeFunc = Callable[[int, bool], int]
"""(current permission bits incl. suid/sgid/sticky, is_dir) -> new bits."""


class ChmodError(UserError):
    pass


def parse_octal(value: str) -> int | None:
    """The mode of an octal ``--chmod`` value, or None when it is not octal."""
    if not value or any(c not in "01234567" for c in value):
        return None
    mode = int(value, 8)
    if mode > 0o7777:
        raise ChmodError(f"invalid chmod parameter {value!r}: must be at most 7777")
    return mode


def parse(value: str) -> ModeFunc:
    """Compile a ``--chmod`` value into a function applied to each copied entry."""
    octal = parse_octal(value)
    if octal is not None:
        return lambda _cur, _is_dir: octal
    clauses = []
    for raw in value.split(","):
        m = _CLAUSE.match(raw)
        if not m:
            raise ChmodError(
                f"invalid chmod parameter {value!r}",
                hint="use octal (755) or symbolic modes like u=rwX,go=rX or +x",
            )
        clauses.append((m.group(1) or "a", m.group(2), m.group(3)))

    def apply(cur: int, is_dir: bool) -> int:
        mode = cur & 0o7777
        for who, op, perms in clauses:
            mask = 0
            for w in "ugo" if "a" in who else who:
                mask |= _WHO[w]
            if perms in ("u", "g", "o"):
                # copy the bits of another class, spread to every class
                shift = {"u": 6, "g": 3, "o": 0}[perms]
                trio = (mode >> shift) & 0o7
                bits = trio << 6 | trio << 3 | trio
            else:
                bits = 0
                executable = is_dir or bool(cur & 0o111)
                for p in perms:
                    if p == "r":
                        bits |= 0o444
                    elif p == "w":
                        bits |= 0o222
                    elif p == "x" or (p == "X" and executable):
                        bits |= 0o111
                    elif p == "s":
                        bits |= stat.S_ISUID | stat.S_ISGID
                    elif p == "t":
                        bits |= stat.S_ISVTX
            bits &= mask
            if op == "+":
                mode |= bits
            elif op == "-":
                mode &= ~bits
            else:
                mode = (mode & ~mask) | bits
        return mode

    return apply
