"""Symbolic --chmod values, applied as chmod(1)/setmode(3) does with a umask of 0."""

from __future__ import annotations

import pytest

from buildkit_py.llb import chmod


@pytest.mark.parametrize(("value", "cur", "is_dir", "want"), [
    ("+x", 0o644, False, 0o755),
    ("u+x", 0o644, False, 0o744),
    ("go-r", 0o664, False, 0o620),
    ("a=rX,u+w", 0o644, False, 0o644),
    ("a=rX,u+w", 0o744, False, 0o755),   # X: executable by someone already
    ("a=rX,u+w", 0o600, True, 0o755),    # X: always on directories
    ("g=u", 0o640, False, 0o660),        # copy a class
    ("go=u-w", 0o755, False, 0o755),     # copy, then another operator in the clause
    ("u+x-w", 0o644, False, 0o544),
    ("u+s,o-rwx", 0o755, False, 0o4750),
    ("o+s", 0o644, False, 0o644),        # set-id bits are ignored for "other" alone
    ("+t", 0o755, True, 0o1755),
    ("=", 0o4755, False, 0o0),
    ("u=rw,g=r,o=", 0o777, False, 0o640),
])
def test_symbolic_modes(value: str, cur: int, is_dir: bool, want: int) -> None:
    assert chmod.parse(value)(cur, is_dir) == want


@pytest.mark.parametrize("value", ["u+q", "", "u", "a", "u+x,", "17777", "9", "+x,,"])
def test_invalid(value: str) -> None:
    with pytest.raises(chmod.ChmodError):
        chmod.parse(value)
    assert not value or value[0].isdigit() or chmod.compile_symbolic(value) is None
