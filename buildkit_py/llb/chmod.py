"""``--chmod`` values: octal (``755``) or symbolic (``u=rwX,go=rX``, ``+x``, ``g=u``).

Symbolic modes follow chmod(1)/setmode(3) as BuildKit applies them (with a umask of 0):
a clause is ``[ugoa]*`` then one or more ``[-+=]`` each followed by ``[rwxXst]*`` or a
class to copy (``u``, ``g``, ``o``); clauses are separated by ``,``. The string compiles
into bit commands applied to each copied entry's current mode.
"""

from __future__ import annotations

from collections.abc import Callable

from buildkit_py.errors import UserError

ModeFunc = Callable[[int, bool], int]
"""(current permission bits incl. suid/sgid/sticky, is_dir) -> new bits."""

_SUID, _SGID, _STICKY = 0o4000, 0o2000, 0o1000
_STANDARD = 0o6777  # what "a" and a bare "=" cover: not the sticky bit
_ALL = 0xFFFF
_WHO = {"a": _STANDARD, "u": _SUID | 0o700, "g": _SGID | 0o070, "o": 0o007}
# For class copies (u/g/o as a permission): which classes receive, and how.
_TO_U, _TO_G, _TO_O, _CLEAR, _SET = 1, 2, 4, 8, 16

_Cmd = tuple[str, int, int]  # (command, bits, class-copy flags)


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


def _add(cmds: list[_Cmd], op: str, who: int, arg: int | str) -> None:
    if op in "ugo":
        assert isinstance(arg, str)
        if who:
            flags = ((_TO_U if who & 0o400 else 0) | (_TO_G if who & 0o040 else 0)
                     | (_TO_O if who & 0o004 else 0))
        else:
            flags = _TO_U | _TO_G | _TO_O
        flags |= {"+": _SET, "-": _CLEAR, "=": _SET | _CLEAR}[arg]
        cmds.append((op, _ALL, flags))
        return
    assert isinstance(arg, int)
    if op == "=":
        cmds.append(("-", who or _STANDARD, 0))
        op = "+"
    cmds.append((op, who & arg if who else arg, 0))


def compile_symbolic(value: str) -> list[_Cmd] | None:
    """The bit commands of a symbolic mode, or None when it is not valid syntax."""
    cmds: list[_Cmd] = []
    s, i, n = value, 0, len(value)
    equal_done = False
    while True:
        who = 0
        while i < n and s[i] in _WHO:
            who |= _WHO[s[i]]
            i += 1
        if i >= n:
            return None
        while True:  # one or more operators in this clause
            op = s[i]
            i += 1
            if op == "=":
                equal_done = False
            elif op not in "+-":
                return None
            who &= ~_STICKY
            perm = perm_x = 0
            while True:
                b = s[i] if i < n else ""
                if b == "r":
                    perm |= 0o444
                elif b == "w":
                    perm |= 0o222
                elif b == "x":
                    perm |= 0o111
                elif b == "X":
                    if op != "-":
                        perm_x = 0o111
                    else:
                        perm |= 0o111
                elif b == "s":
                    if who == 0 or who & ~0o007:  # ignored for "other" alone
                        perm |= _SUID | _SGID
                elif b == "t":
                    if who == 0 or who & ~0o007:
                        who |= _STICKY
                        perm |= _STICKY
                elif b in ("u", "g", "o"):
                    if perm:
                        _add(cmds, op, who, perm)
                        perm = 0
                    if op == "=":
                        equal_done = True
                    if perm_x:
                        _add(cmds, "X", who, perm_x)
                        perm_x = 0
                    _add(cmds, b, who, op)
                else:
                    if perm or (op == "=" and not equal_done):
                        if op == "=":
                            equal_done = True
                        _add(cmds, op, who, perm)
                    if perm_x:
                        _add(cmds, "X", who, perm_x)
                    break
                i += 1
            if i >= n:
                return cmds
            if s[i] == ",":
                i += 1
                break
            # another operator for the same classes


def _apply(cmds: list[_Cmd], cur: int, is_dir: bool) -> int:
    old = cur & 0o7777
    mode = old
    for cmd, bits, flags in cmds:
        if cmd in ("u", "g", "o"):
            shift = {"u": 6, "g": 3, "o": 0}[cmd]
            value = (mode >> shift) & 0o7
            for to, to_shift in ((_TO_U, 6), (_TO_G, 3), (_TO_O, 0)):
                if not flags & to:
                    continue
                if flags & _CLEAR:
                    mode &= ~(((0o7 if flags & _SET else value) << to_shift) & bits)
                if flags & _SET:
                    mode |= (value << to_shift) & bits
        elif cmd == "+":
            mode |= bits
        elif cmd == "-":
            mode &= ~bits
        elif cmd == "X" and (old & 0o111 or is_dir):
            mode |= bits
    return mode & 0o7777


def parse(value: str) -> ModeFunc:
    """Compile a ``--chmod`` value into a function applied to each copied entry."""
    octal = parse_octal(value)
    if octal is not None:
        return lambda _cur, _is_dir: octal
    cmds = compile_symbolic(value) if value and not value[0].isdigit() else None
    if cmds is None:
        raise ChmodError(
            f"invalid chmod parameter {value!r}",
            hint="use octal (755) or symbolic modes like u=rwX,go=rX or +x",
        )
    return lambda cur, is_dir: _apply(cmds, cur, is_dir)
