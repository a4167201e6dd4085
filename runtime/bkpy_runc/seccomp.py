"""``linux.seccomp`` (runtime-spec config-linux.md): profile -> classic BPF -> kernel.

Only bundles with a profile import this module. The runtime validates the profile before
anything is set up (a bad one fails ``create``), compiles it while the container's init
builds the rootfs, and hands the program over a pipe; the init's child loads it as the
last step before exec, so it binds the user process only.

Semantics follow runc with libseccomp, so both runtimes treat one config alike:
- the host's native architecture is always filtered, plus the listed ones; a syscall
  from any other architecture meets the bad-arch action (kill). Listed architectures
  without a syscall table here (MIPS, PPC, S390, ARM, ...) are accepted but left out, so
  their syscalls are killed too. An emulated process (qemu-user) makes host syscalls and
  is filtered as the host architecture.
- syscall names unknown on an architecture are skipped for that architecture;
- rules whose action equals the default action are dropped (they change nothing);
- a rule naming one argument index twice becomes one rule per condition (OR), as runc;
- an unconditional rule decides its syscall; otherwise conditional rules are tried in
  profile order and the default action applies when none matches;
- unless the default action is permissive, syscalls numbered above the highest one the
  profile names on a listed architecture get ENOSYS, so programs fall back from syscalls
  newer than the profile (runc's -ENOSYS stub);
- arguments are compared as 64-bit values (both 32-bit halves) on 64-bit ABIs.
"""

from __future__ import annotations

import _ctypes
import os
import sys

from . import jsonio
from . import seccomp_bpf as bpf
from .errors import RuntimeFailure

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~15 ms of start-up; annotations are lazy
    from collections.abc import Callable
    from typing import Any

# SECCOMP_RET_* (linux/seccomp.h); the low 16 bits carry data (the errno).
_RET_KILL_PROCESS = 0x80000000
_RET_KILL_THREAD = 0x00000000
_RET_TRAP = 0x00030000
_RET_ERRNO = 0x00050000
_RET_TRACE = 0x7FF00000
_RET_LOG = 0x7FFC0000
_RET_ALLOW = 0x7FFF0000
ACTIONS = {
    "SCMP_ACT_KILL": _RET_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": _RET_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": _RET_KILL_PROCESS,
    "SCMP_ACT_TRAP": _RET_TRAP,
    "SCMP_ACT_ERRNO": _RET_ERRNO,
    "SCMP_ACT_TRACE": _RET_TRACE,
    "SCMP_ACT_LOG": _RET_LOG,
    "SCMP_ACT_ALLOW": _RET_ALLOW,
}
_TAKES_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
_PERMISSIVE = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE")
_EPERM = 1
_ENOSYS = 38
_BAD_ARCH = _RET_KILL_THREAD  # libseccomp's default bad-arch action

FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
}
# Valid in the spec but only meaningful with a notify listener, which is not supported.
_NOTIFY_FLAGS = ("SECCOMP_FILTER_FLAG_NEW_LISTENER", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")

OPERATORS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
             "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ")

_X32_BIT = 0x40000000
_AUDIT_X86_64 = 0xC000003E
# SCMP_ARCH_* -> (table module suffix, AUDIT_ARCH_*, 64-bit argument registers)
ARCHES: dict[str, tuple[str, int, bool]] = {
    "SCMP_ARCH_X86_64": ("x86_64", _AUDIT_X86_64, True),
    "SCMP_ARCH_X86": ("i386", 0x40000003, False),
    "SCMP_ARCH_X32": ("x32", _AUDIT_X86_64, False),  # x86_64 audit arch, numbers have bit 30
    "SCMP_ARCH_AARCH64": ("aarch64", 0xC00000B7, True),
}
# Valid SCMP_ARCH_* names (libseccomp 2.5) without a table here: accepted, not filtered.
_UNTABLED = frozenset((
    "SCMP_ARCH_ARM", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB",
))
_NATIVE = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6]
_OFF_NR = 0
_OFF_ARCH = 4
_OFF_ARGS = 16
_LITTLE = sys.byteorder == "little"

Cond = tuple[int, str, int, int]  # (argument index, operator, value, valueTwo)


class Filter:
    """A compiled filter: the BPF program and the seccomp(2) flags to load it with."""

    __slots__ = ("flags", "program", "syscall_nr")

    def __init__(self, program: bytes, flags: int, syscall_nr: int) -> None:
        self.program = program
        self.flags = flags
        self.syscall_nr = syscall_nr  # seccomp(2) on the host


# Set by a fork server: compiled filters by profile key, and where a fork reports a new one.
memo: dict[str, Filter] = {}
learned: Callable[[str, Filter], None] | None = None


class Rule:
    __slots__ = ("action", "conds", "names")

    def __init__(self, names: list[str], action: int, conds: list[Cond]) -> None:
        self.names = names
        self.action = action
        self.conds = conds


def _fail(reason: str) -> RuntimeFailure:
    return RuntimeFailure("seccomp", reason)


def _uint(value: Any, what: str, top: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
        raise _fail(f"{what} must be an integer in 0..{top}, not {value!r}")
    return value


def _action(name: Any, errno: Any, what: str) -> int:
    if name == "SCMP_ACT_NOTIFY":
        raise _fail(f"{what}: SCMP_ACT_NOTIFY is not supported")
    ret = ACTIONS.get(name) if isinstance(name, str) else None
    if ret is None:
        raise _fail(f"{what}: unknown action {name!r}")
    if name in _TAKES_ERRNO:
        return ret | (_EPERM if errno is None else _uint(errno, f"{what} errnoRet", 0xFFFF))
    if errno is not None:
        raise _fail(f"{what}: errnoRet is not valid with {name}")
    return ret


def _conds(args: Any, what: str) -> list[Cond]:
    if args is None:
        return []
    if not isinstance(args, list):
        raise _fail(f"{what}.args must be a list")
    out: list[Cond] = []
    for i, arg in enumerate(args):
        where = f"{what}.args[{i}]"
        if not isinstance(arg, dict):
            raise _fail(f"{where} must be an object")
        op = arg.get("op")
        if op not in OPERATORS:
            raise _fail(f"{where}: unknown operator {op!r}")
        out.append((_uint(arg.get("index"), f"{where}.index", 5), op,
                    _uint(arg.get("value"), f"{where}.value", 2**64 - 1),
                    _uint(arg.get("valueTwo", 0), f"{where}.valueTwo", 2**64 - 1)))
    return out


def _rules(syscalls: Any) -> list[Rule]:
    if syscalls is None:
        return []
    if not isinstance(syscalls, list):
        raise _fail("syscalls must be a list")
    rules: list[Rule] = []
    for i, entry in enumerate(syscalls):
        what = f"syscalls[{i}]"
        if not isinstance(entry, dict):
            raise _fail(f"{what} must be an object")
        names = entry.get("names")
        if not isinstance(names, list) or not names or not all(
                isinstance(n, str) and n for n in names):
            raise _fail(f"{what}.names must be a non-empty list of syscall names")
        action = _action(entry.get("action"), entry.get("errnoRet"), what)
        conds = _conds(entry.get("args"), what)
        indexes = [c[0] for c in conds]
        if len(set(indexes)) < len(indexes):  # runc: each condition becomes its own rule
            rules.extend(Rule(names, action, [c]) for c in conds)
        else:
            rules.append(Rule(names, action, conds))
    return rules


def _table(suffix: str) -> dict[str, int]:
    # Imported on demand: a profile for x86_64 alone never loads the aarch64 table.
    module = __import__(f"{__package__}.seccomp_table_{suffix}", fromlist=["NUMBERS"])
    numbers: dict[str, int] = module.NUMBERS
    return numbers


class Profile:
    """A validated profile, ready to compile for the host."""

    __slots__ = ("default", "flags", "hit", "key", "listed", "native", "rules", "stub")

    def __init__(self, raw: Any, machine: str | None = None) -> None:
        if not isinstance(raw, dict):
            raise _fail("linux.seccomp must be an object")
        machine = machine or os.uname().machine
        # Only a fork server keeps compiled filters (see forkserver.py). A profile found
        # there was validated when it was compiled: it needs neither checks nor compiling.
        self.key = machine + "\0" + jsonio.compact(raw) if learned is not None else ""
        self.hit = memo.get(self.key) if self.key else None
        if self.hit is not None:
            return
        native = _NATIVE.get(machine)
        if native is None:
            raise _fail(f"unsupported host architecture {machine!r}")
        self.native = native
        default_name = raw.get("defaultAction")
        self.default = _action(default_name, raw.get("defaultErrnoRet"), "defaultAction")
        # runc's ENOSYS stub exists only when unknown syscalls would otherwise be refused.
        self.stub = default_name not in _PERMISSIVE
        listed = raw.get("architectures") or []
        if not isinstance(listed, list):
            raise _fail("architectures must be a list")
        for arch in listed:
            if arch not in ARCHES and arch not in _UNTABLED:
                raise _fail(f"unknown architecture {arch!r}")
        self.listed: list[str] = listed
        self.flags = 0
        for flag in raw.get("flags") or []:
            if flag in _NOTIFY_FLAGS:
                raise _fail(f"{flag} needs SCMP_ACT_NOTIFY, which is not supported")
            if flag not in FLAGS:
                raise _fail(f"unknown flag {flag!r}")
            self.flags |= FLAGS[flag]
        self.rules = _rules(raw.get("syscalls"))

    def compile(self) -> Filter:
        """The filter for this profile: remembered by a fork server, else compiled."""
        if self.hit is not None:
            return self.hit
        filt = self._compile()
        if self.key and learned is not None:
            learned(self.key, filt)
        return filt

    def _compile(self) -> Filter:
        """Arch dispatch, then per architecture a search tree over syscall numbers."""
        arches = [a for a in dict.fromkeys([self.native, *self.listed]) if a in ARCHES]
        asm = bpf.Asm()
        sections = [(a, asm.label()) for a in arches]
        asm.load(_OFF_ARCH)
        seen_audit: set[int] = set()
        for arch, label in sections:
            audit = ARCHES[arch][1]
            if audit not in seen_audit:  # x32 shares x86_64's section
                seen_audit.add(audit)
                asm.jump(bpf.JEQ, audit, label)
        asm.ret(_BAD_ARCH)
        x32 = next((label for arch, label in sections if arch == "SCMP_ARCH_X32"), None)
        for arch, label in sections:
            suffix, _audit, wide = ARCHES[arch]
            table = _table(suffix)
            stub = self.stub and arch in self.listed
            asm.place(label)
            if arch != "SCMP_ARCH_X32" or "SCMP_ARCH_X86_64" not in arches:
                asm.load(_OFF_NR)  # (x32 is reached from x86_64 with nr loaded)
            if arch == "SCMP_ARCH_X86_64":
                # x32 syscalls arrive under the x86_64 audit arch with bit 30 set.
                if x32 is None:
                    bad = asm.label()
                    asm.jump(bpf.JSET, _X32_BIT, bad)
                    _section(asm, table, self.rules, self.default, wide, stub)
                    asm.place(bad)
                    asm.ret(_BAD_ARCH)
                    continue
                asm.jump(bpf.JSET, _X32_BIT, x32)
            _section(asm, table, self.rules, self.default, wide, stub)
        return Filter(asm.assemble(), self.flags, _table(ARCHES[self.native][0])["seccomp"])


def compile_profile(raw: Any, machine: str | None = None) -> Filter:
    """Validate ``linux.seccomp`` and compile it for this host (``os.uname().machine``)."""
    return Profile(raw, machine).compile()


def pack(filt: Filter) -> bytes:
    """A filter as bytes: an 8-byte header (size, flags, seccomp(2) number), the program."""
    head = (len(filt.program) | filt.flags << 32 | filt.syscall_nr << 48).to_bytes(8, "little")
    return head + filt.program


def unpack(data: bytes) -> Filter | None:
    """The filter ``pack`` made, or None if ``data`` is not a whole one."""
    if len(data) < 8:
        return None
    head = int.from_bytes(data[:8], "little")
    if len(data) - 8 != head & 0xFFFFFFFF or (len(data) - 8) % 8:
        return None
    return Filter(data[8:], head >> 32 & 0xFFFF, head >> 48)


def send(fd: int, filt: Filter) -> None:
    """Hand a compiled filter to the container's init over a pipe."""
    data = memoryview(pack(filt))  # at most 32 KiB: fits the empty pipe
    while data:
        data = data[os.write(fd, data):]


def receive(fd: int) -> Filter | None:
    """The filter ``send`` wrote, or None if the runtime closed the pipe first (it failed)."""
    data = b""
    size = 8
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
        if size == 8 and len(data) == 8:
            head = int.from_bytes(data, "little")
            size += head & 0xFFFFFFFF
    return unpack(data)


def _section(asm: bpf.Asm, table: dict[str, int], rules: list[Rule], default: int,
             wide: bool, stub: bool) -> None:
    """One architecture (``nr`` loaded): a binary search over syscall-number ranges to the
    outcome, then the argument checks the outcomes jump to."""
    get = table.get
    by_nr: dict[int, list[Rule]] = {}
    last = -1
    for rule in rules:
        differs = rule.action != default  # rules equal to the default change nothing
        for name in rule.names:
            nr = get(name)
            if nr is None:
                continue
            if nr > last:
                last = nr
            if differs:
                if nr in by_nr:
                    by_nr[nr].append(rule)
                else:
                    by_nr[nr] = [rule]
    # Ranges of numbers with one outcome, as parallel lists: first number and outcome,
    # each range reaching up to the next start. Outcome: ("ret", action) or ("args", rules).
    fallback = ("ret", default)
    starts = [0]
    outs: list[tuple[str, Any]] = [fallback]
    rets: dict[int, tuple[str, Any]] = {default: fallback}  # one tuple per action
    for nr in sorted(by_nr):
        nr_rules = by_nr[nr]
        first = nr_rules[0]
        plain = first if not first.conds else next((r for r in nr_rules if not r.conds), None)
        if plain is None:
            out: tuple[str, Any] = ("args", tuple(nr_rules))
        else:
            out = rets.get(plain.action) or rets.setdefault(plain.action, ("ret", plain.action))
        if starts[-1] == nr:  # the gap after the previous number is empty
            starts.pop()
            outs.pop()
        if not outs or outs[-1] != out:
            starts.append(nr)
            outs.append(out)
        starts.append(nr + 1)
        outs.append(fallback)
    if stub and last >= 0:
        while starts[-1] > last:
            starts.pop()
            outs.pop()
        starts.append(last + 1)
        outs.append(("ret", _RET_ERRNO | _ENOSYS))
    blocks: dict[tuple[Rule, ...], int] = {}
    _tree(asm, starts, outs, 0, len(starts), blocks)
    for block_rules, label in blocks.items():
        asm.place(label)
        _arg_checks(asm, block_rules, default, wide)


def _tree(asm: bpf.Asm, starts: list[int], outs: list[tuple[str, Any]], lo: int, hi: int,
          blocks: dict[tuple[Rule, ...], int]) -> None:
    if hi - lo == 1:
        kind, value = outs[lo]
        if kind == "ret":
            asm.ret(value)
        else:
            label = blocks.get(value)
            if label is None:
                label = blocks[value] = asm.label()
            asm.goto(label)
        return
    mid = (lo + hi) // 2
    upper = asm.label()
    asm.jump(bpf.JGE, starts[mid], upper)
    _tree(asm, starts, outs, lo, mid, blocks)
    asm.place(upper)
    _tree(asm, starts, outs, mid, hi, blocks)


def _arg_checks(asm: bpf.Asm, rules: tuple[Rule, ...], default: int, wide: bool) -> None:
    for rule in rules:
        fail = asm.label()
        for cond in rule.conds:
            _cond(asm, cond, fail, wide)
        asm.ret(rule.action)
        asm.place(fail)
    asm.ret(default)


def _cond(asm: bpf.Asm, cond: Cond, fail: int, wide: bool) -> None:
    """Fall through when the condition holds, jump to ``fail`` otherwise.

    64-bit values are compared high half first; 32-bit ABIs compare the low half only.
    """
    index, op, value, two = cond
    lo_off = _OFF_ARGS + 8 * index + (0 if _LITTLE else 4)
    hi_off = _OFF_ARGS + 8 * index + (4 if _LITTLE else 0)
    v_hi, v_lo = value >> 32, value & 0xFFFFFFFF
    ok = asm.label()
    if op == "SCMP_CMP_MASKED_EQ":
        t_hi, t_lo = two >> 32, two & 0xFFFFFFFF
        if wide and (v_hi or t_hi):
            asm.load(hi_off)
            asm.and_(v_hi)
            asm.jump(bpf.JEQ, t_hi, None, fail)
        asm.load(lo_off)
        asm.and_(v_lo)
        asm.jump(bpf.JEQ, t_lo, None, fail)
    elif op == "SCMP_CMP_EQ":
        if wide:
            asm.load(hi_off)
            asm.jump(bpf.JEQ, v_hi, None, fail)
        asm.load(lo_off)
        asm.jump(bpf.JEQ, v_lo, None, fail)
    elif op == "SCMP_CMP_NE":
        if wide:
            asm.load(hi_off)
            asm.jump(bpf.JEQ, v_hi, None, ok)
        asm.load(lo_off)
        asm.jump(bpf.JEQ, v_lo, fail, ok)
    elif not wide:
        asm.load(lo_off)
        if op == "SCMP_CMP_GT":
            asm.jump(bpf.JGT, v_lo, None, fail)
        elif op == "SCMP_CMP_GE":
            asm.jump(bpf.JGE, v_lo, None, fail)
        elif op == "SCMP_CMP_LT":
            asm.jump(bpf.JGE, v_lo, fail, None)
        else:  # SCMP_CMP_LE
            asm.jump(bpf.JGT, v_lo, fail, None)
    else:
        # High halves decide unless equal; then the low halves do.
        above, below = (ok, fail) if op in ("SCMP_CMP_GT", "SCMP_CMP_GE") else (fail, ok)
        asm.load(hi_off)
        asm.jump(bpf.JGT, v_hi, above, None)
        asm.jump(bpf.JEQ, v_hi, None, below)
        asm.load(lo_off)
        if op == "SCMP_CMP_GT":
            asm.jump(bpf.JGT, v_lo, ok, fail)
        elif op == "SCMP_CMP_GE":
            asm.jump(bpf.JGE, v_lo, ok, fail)
        elif op == "SCMP_CMP_LT":
            asm.jump(bpf.JGE, v_lo, fail, ok)
        else:  # SCMP_CMP_LE
            asm.jump(bpf.JGT, v_lo, fail, ok)
    asm.place(ok)


class _Long(_ctypes._SimpleCData):
    _type_ = "l"


class _UShort(_ctypes._SimpleCData):
    _type_ = "H"


class _CharP(_ctypes._SimpleCData):
    _type_ = "z"


class _Fprog(_ctypes.Structure):
    """struct sock_fprog { unsigned short len; struct sock_filter *filter; }"""

    _fields_ = [("len", _UShort), ("filter", _CharP)]


class _Func(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = _Long


class _Libc:
    _handle = _ctypes.dlopen(None, os.RTLD_NOW)  # type: ignore[arg-type]  # libc, loaded


_syscall = _Func(("syscall", _Libc()))  # type: ignore[arg-type]
_syscall.argtypes = (_Long, _Long, _Long, _Long)
_SET_MODE_FILTER = 1


def install(filt: Filter) -> None:
    """seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog) for the calling thread.

    Needs no_new_privs or CAP_SYS_ADMIN; the caller arranges one of them.
    """
    fprog = _Fprog(len(filt.program) // 8, filt.program)  # keeps the bytes alive
    if _syscall(filt.syscall_nr, _SET_MODE_FILTER, filt.flags, _ctypes.addressof(fprog)) < 0:
        err = _ctypes.get_errno()
        raise RuntimeFailure("seccomp: load filter", os.strerror(err))
