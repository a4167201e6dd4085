"""A tiny classic-BPF assembler for seccomp filters: symbolic labels, forward jumps only.

Conditional jumps reach at most 255 instructions ahead; the assembler rewrites a jump
whose target is farther into a short jump to an inserted ``ja`` (32-bit offset).
"""

from __future__ import annotations

import sys

from .errors import RuntimeFailure

LD_W_ABS = 0x20  # A = *(u32 *)(seccomp_data + k)
AND_K = 0x54  # A &= k
JA = 0x05
JEQ = 0x15
JGT = 0x25
JGE = 0x35
JSET = 0x45
RET_K = 0x06

MAX_INSNS = 4096  # BPF_MAXINSNS: the kernel refuses longer programs
_NEXT = -1  # jump target meaning "the following instruction"
_LITTLE = sys.byteorder == "little"


class Asm:
    """Collects instructions and label placements, then resolves them to bytes."""

    __slots__ = ("_items", "_labels")

    def __init__(self) -> None:
        # Instruction: [code, k, true_label, false_label]; label: int (its id).
        self._items: list[list[int] | int] = []
        self._labels = 0

    def label(self) -> int:
        self._labels += 1
        return self._labels

    def place(self, label: int) -> None:
        self._items.append(label)

    def load(self, offset: int) -> None:
        self._items.append([LD_W_ABS, offset, _NEXT, _NEXT])

    def and_(self, k: int) -> None:
        self._items.append([AND_K, k, _NEXT, _NEXT])

    def jump(self, code: int, k: int, true: int | None, false: int | None = None) -> None:
        """Conditional jump; a target of None falls through to the next instruction."""
        self._items.append([code, k, _NEXT if true is None else true,
                            _NEXT if false is None else false])

    def goto(self, label: int) -> None:
        self._items.append([JA, 0, label, _NEXT])

    def ret(self, k: int) -> None:
        self._items.append([RET_K, k, _NEXT, _NEXT])

    def assemble(self) -> bytes:
        while True:
            where, count = self._positions()
            far = self._first_far_jump(where)
            if far < 0:
                break
            self._add_trampolines(far, where)
        if count > MAX_INSNS:
            raise RuntimeFailure("seccomp", f"filter needs {count} BPF instructions "
                                 f"(the kernel allows {MAX_INSNS})")
        out: list[int] = []
        pos = 0
        for item in self._items:
            if isinstance(item, int):
                continue
            code, k, t, f = item
            if code == JA:
                k, t, f = where[t] - pos - 1, 0, 0
            elif code in (JEQ, JGT, JGE, JSET):
                t = 0 if t == _NEXT else where[t] - pos - 1
                f = 0 if f == _NEXT else where[f] - pos - 1
            else:
                t = f = 0
            # struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; } in host byte order
            if _LITTLE:
                out.append(code | t << 16 | f << 24 | k << 32)
            else:
                out.append(code << 48 | t << 40 | f << 32 | k)
            pos += 1
        return b"".join(i.to_bytes(8, sys.byteorder) for i in out)

    def _positions(self) -> tuple[dict[int, int], int]:
        where: dict[int, int] = {}
        pos = 0
        for item in self._items:
            if isinstance(item, int):
                where[item] = pos
            else:
                pos += 1
        return where, pos

    def _first_far_jump(self, where: dict[int, int]) -> int:
        pos = 0
        for idx, item in enumerate(self._items):
            if isinstance(item, int):
                continue
            if item[0] in (JEQ, JGT, JGE, JSET):
                for target in item[2:]:
                    if target != _NEXT:
                        dist = where[target] - pos - 1
                        if dist < 0:
                            raise RuntimeFailure("seccomp", "internal error: backward jump")
                        if dist > 255:
                            return idx
            pos += 1
        return -1

    def _add_trampolines(self, idx: int, where: dict[int, int]) -> None:
        """Point the far branch(es) of jump ``idx`` at ``ja`` instructions right after it."""
        item = self._items[idx]
        assert not isinstance(item, int)
        pos = sum(1 for it in self._items[:idx] if not isinstance(it, int))
        after = self.label()  # the original fall-through instruction
        inserted: list[list[int] | int] = []
        for slot in (2, 3):
            target = item[slot]
            if target == _NEXT:
                item[slot] = after
            elif where[target] - pos - 1 > 255:
                hop = self.label()
                inserted += [hop, [JA, 0, target, _NEXT]]
                item[slot] = hop
        inserted.append(after)
        self._items[idx + 1:idx + 1] = inserted
