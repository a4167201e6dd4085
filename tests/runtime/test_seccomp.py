"""``linux.seccomp``: the BPF the runtime compiles, and containers under runc and bkpy-runc.

The compiled program is checked by running it in a small classic-BPF interpreter (every
operator on both 32-bit halves, architectures, x32, the ENOSYS stub, long jumps), then in
the kernel, then in containers where both runtimes must behave identically.
"""

from __future__ import annotations

import errno
import json
import os
import struct
import subprocess
import time
from typing import Any

import pytest
from bkpy_runc import seccomp
from bkpy_runc.errors import RuntimeFailure
from bkpy_runc.seccomp_table_aarch64 import NUMBERS as AARCH64
from bkpy_runc.seccomp_table_i386 import NUMBERS as I386
from bkpy_runc.seccomp_table_x32 import NUMBERS as X32
from bkpy_runc.seccomp_table_x86_64 import NUMBERS as X86_64

from buildkit_py.executor.seccomp_default import default_profile

from .bundle import DOCKER_CAPS, make_rootfs
from .conftest import Runtimes

AUDIT_X86_64, AUDIT_I386, AUDIT_AARCH64, AUDIT_ARM = 0xC000003E, 0x40000003, 0xC00000B7, 0x40000028
ALLOW, KILL_THREAD, KILL_PROCESS = 0x7FFF0000, 0, 0x80000000
TRAP, TRACE, LOG = 0x00030000, 0x7FF00000, 0x7FFC0000


def ERRNO(n: int) -> int:  # reads like the kernel's SECCOMP_RET_ERRNO(n)
    return 0x00050000 | n


def run_bpf(program: bytes, nr: int, arch: int = AUDIT_X86_64, args: tuple[int, ...] = ()) -> int:
    """Interpret a seccomp program for one syscall (struct seccomp_data, little endian)."""
    full = (list(args) + [0] * 6)[:6]
    data = struct.pack("<iIQ6Q", nr, arch, 0x1000, *full)
    insns = [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        pc += 1
        if code == 0x20:
            acc = struct.unpack_from("<I", data, k)[0]
        elif code == 0x54:
            acc &= k
        elif code == 0x05:
            pc += k
        elif code == 0x06:
            return k
        else:
            cond = {0x15: acc == k, 0x25: acc > k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += jt if cond else jf


def compile_(profile: dict[str, Any], machine: str = "x86_64") -> bytes:
    return seccomp.compile_profile(profile, machine).program


DOCKER = default_profile(DOCKER_CAPS, arch="amd64", kernel=(6, 1))


# --- the compiled program ------------------------------------------------------------------


def test_docker_profile_allows_the_allowlist_and_denies_the_rest_with_eperm() -> None:
    prog = compile_(DOCKER)
    for name in ("read", "write", "openat", "execve", "wait4", "arch_prctl", "chroot"):
        assert run_bpf(prog, X86_64[name]) == ALLOW, name
    for name in ("mount", "unshare", "setns", "reboot", "swapon", "keyctl", "init_module",
                 "kexec_load", "bpf", "umount2", "pivot_root"):
        assert run_bpf(prog, X86_64[name]) == ERRNO(errno.EPERM), name
    assert run_bpf(prog, X86_64["clone3"]) == ERRNO(errno.ENOSYS)  # libc falls back to clone


def test_docker_argument_rules_clone_personality_socket() -> None:
    prog = compile_(DOCKER)
    clone = X86_64["clone"]
    assert run_bpf(prog, clone, args=(0x01200011,)) == ALLOW  # fork(): SIGCHLD|CHILD_*TID
    for flag in (0x10000000, 0x20000000, 0x00020000, 0x40000000):  # NEWUSER/PID/NS/NET
        assert run_bpf(prog, clone, args=(0x01200011 | flag,)) == ERRNO(errno.EPERM)
    pers = X86_64["personality"]
    for value in (0, 8, 0x20000, 0x20008, 0xFFFFFFFF):
        assert run_bpf(prog, pers, args=(value,)) == ALLOW
    for value in (0x0040000, 0x1_0000_0000, 0xFFFFFFFF_FFFFFFFF):  # ADDR_NO_RANDOMIZE; high half
        assert run_bpf(prog, pers, args=(value,)) == ERRNO(errno.EPERM)
    assert run_bpf(prog, X86_64["socket"], args=(2,)) == ALLOW  # AF_INET
    assert run_bpf(prog, X86_64["socket"], args=(40,)) == ERRNO(errno.EPERM)  # AF_VSOCK


def test_architectures_native_listed_and_foreign() -> None:
    prog = compile_(DOCKER)
    # i386 is filtered with its own numbers; x86_64-only names are absent there.
    assert run_bpf(prog, I386["socketcall"], AUDIT_I386) == ALLOW
    assert run_bpf(prog, I386["mount"], AUDIT_I386) == ERRNO(errno.EPERM)
    assert run_bpf(prog, X86_64["mount"], AUDIT_I386) == ALLOW  # 165 is getresuid on i386
    # An architecture that is not in the filter is killed (libseccomp's bad-arch action).
    assert run_bpf(prog, AARCH64["openat"], AUDIT_AARCH64) == KILL_THREAD
    # The host's architecture is always filtered, even when the profile lists another one
    # (an emulated arm64 program makes the emulator's host syscalls).
    only_arm64 = {**DOCKER, "architectures": ["SCMP_ARCH_AARCH64"]}
    prog = compile_(only_arm64)
    assert run_bpf(prog, X86_64["read"]) == ALLOW
    assert run_bpf(prog, X86_64["mount"]) == ERRNO(errno.EPERM)
    assert run_bpf(prog, AARCH64["openat"], AUDIT_AARCH64) == ALLOW
    assert run_bpf(prog, AARCH64["mount"], AUDIT_AARCH64) == ERRNO(errno.EPERM)
    assert run_bpf(prog, 1, AUDIT_ARM) == KILL_THREAD


def test_aarch64_host_uses_the_generic_numbers() -> None:
    profile = default_profile(DOCKER_CAPS, arch="arm64", kernel=(6, 1))
    prog = compile_(profile, machine="aarch64")
    assert run_bpf(prog, AARCH64["mkdirat"], AUDIT_AARCH64) == ALLOW
    assert run_bpf(prog, AARCH64["unshare"], AUDIT_AARCH64) == ERRNO(errno.EPERM)
    assert run_bpf(prog, X86_64["read"], AUDIT_X86_64) == KILL_THREAD
    assert seccomp.compile_profile(profile, "aarch64").syscall_nr == AARCH64["seccomp"] == 277


def test_x32_syscalls_use_the_x32_rules_or_meet_the_bad_arch_action() -> None:
    prog = compile_(DOCKER)
    assert run_bpf(prog, X32["rt_sigaction"]) == ALLOW
    assert run_bpf(prog, X32["mount"]) == ERRNO(errno.EPERM)
    no_x32 = {**DOCKER, "architectures": ["SCMP_ARCH_X86_64"]}
    assert run_bpf(compile_(no_x32), X32["read"]) == KILL_THREAD


def test_syscalls_newer_than_the_profile_get_enosys_unless_default_allows() -> None:
    prog = compile_(DOCKER)
    newest = max(X86_64[n] for rule in DOCKER["syscalls"] for n in rule["names"]
                 if n in X86_64)
    assert run_bpf(prog, newest + 1) == ERRNO(errno.ENOSYS)
    assert run_bpf(prog, 1000) == ERRNO(errno.ENOSYS)
    # Not for the native architecture when the profile does not list it, as runc.
    unlisted = {**DOCKER, "architectures": []}
    assert run_bpf(compile_(unlisted), 1000) == ERRNO(errno.EPERM)
    permissive = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                  "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    assert run_bpf(compile_(permissive), 1000) == ALLOW


WIDE = (0, 1, 7, 0xFFFFFFFE, 0xFFFFFFFF, 0x1_0000_0000, 0x1_0000_0001, 0x7_FFFF_FFFF,
        0x8000_0000_0000_0000, 0xFFFF_FFFF_FFFF_FFFF)
OPS = {
    "SCMP_CMP_EQ": lambda a, v, t: a == v, "SCMP_CMP_NE": lambda a, v, t: a != v,
    "SCMP_CMP_LT": lambda a, v, t: a < v, "SCMP_CMP_LE": lambda a, v, t: a <= v,
    "SCMP_CMP_GT": lambda a, v, t: a > v, "SCMP_CMP_GE": lambda a, v, t: a >= v,
    "SCMP_CMP_MASKED_EQ": lambda a, v, t: a & v == t,
}  # fmt: skip


@pytest.mark.parametrize("op", sorted(OPS))
def test_argument_operators_compare_64_bit_values(op: str) -> None:
    for value in WIDE:
        two = value & 0xF0000000F if op == "SCMP_CMP_MASKED_EQ" else 0
        profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
             "args": [{"index": 1, "value": value, "valueTwo": two, "op": op}]}]}
        prog = compile_(profile)
        for arg in WIDE:
            want = ERRNO(5) if OPS[op](arg, value, two) else ALLOW
            assert run_bpf(prog, X86_64["lseek"], args=(3, arg)) == want, (op, value, arg)


def test_32_bit_abis_compare_the_low_half_only() -> None:
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
               "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]}
    prog = compile_(profile)
    assert run_bpf(prog, I386["personality"], AUDIT_I386, (0x5_0000_0008,)) == ERRNO(1)
    assert run_bpf(prog, X86_64["personality"], AUDIT_X86_64, (0x5_0000_0008,)) == ALLOW


def test_rule_semantics_follow_runc() -> None:
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13, "syscalls": [
        # Equal to the default action: dropped, so the conditional ALLOW below decides.
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"names": ["mkdir"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 1, "value": 0o700, "op": "SCMP_CMP_EQ"}]},
        # One argument index twice: each condition is its own rule (OR), as runc does.
        {"names": ["kill"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"},
                  {"index": 1, "value": 15, "op": "SCMP_CMP_EQ"}]},
        # Different indexes: all must hold (AND).
        {"names": ["tgkill"], "action": "SCMP_ACT_TRAP",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                  {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"}]},
        # Names this architecture does not have are skipped, the others still apply.
        {"names": ["no_such_syscall", "arm_fadvise64_64", "getpid"], "action": "SCMP_ACT_LOG"},
        # An unconditional rule decides its syscall.
        {"names": ["getppid"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS",
         "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
        {"names": ["gettid"], "action": "SCMP_ACT_TRACE", "errnoRet": 42},
        {"names": ["uname"], "action": "SCMP_ACT_KILL"},
    ]}
    prog = compile_(profile)
    assert run_bpf(prog, X86_64["mkdir"], args=(0, 0o700)) == ALLOW
    assert run_bpf(prog, X86_64["mkdir"], args=(0, 0o755)) == ERRNO(13)
    assert [run_bpf(prog, X86_64["kill"], args=(1, s)) for s in (9, 15, 2)] == [
        ALLOW, ALLOW, ERRNO(13)]
    assert run_bpf(prog, X86_64["tgkill"], args=(1, 5, 9)) == TRAP
    assert run_bpf(prog, X86_64["tgkill"], args=(2, 5, 9)) == ERRNO(13)
    assert run_bpf(prog, X86_64["getpid"]) == LOG
    assert run_bpf(prog, X86_64["getppid"]) == ALLOW
    assert run_bpf(prog, X86_64["gettid"]) == TRACE | 42
    assert run_bpf(prog, X86_64["uname"]) == KILL_THREAD
    assert run_bpf(prog, X86_64["read"]) == ERRNO(13)


def test_far_jumps_are_resolved_through_trampolines() -> None:
    # Argument checks on every syscall push most targets beyond 255 instructions.
    names = sorted(X86_64, key=X86_64.__getitem__)
    rules = [{"names": [n], "action": "SCMP_ACT_ERRNO", "errnoRet": X86_64[n] % 4000 + 1,
              "args": [{"index": 0, "value": X86_64[n], "op": "SCMP_CMP_EQ"}]} for n in names]
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}
    prog = compile_(profile)
    assert len(prog) // 8 > 1000
    for name in names:
        nr = X86_64[name]
        assert run_bpf(prog, nr, args=(nr,)) == ERRNO(nr % 4000 + 1), name
        assert run_bpf(prog, nr, args=(nr + 1,)) == ALLOW, name


@pytest.mark.parametrize(("profile", "message"), [
    ([], "linux.seccomp must be an object"),
    ({"defaultAction": "SCMP_ACT_BOGUS"}, "defaultAction: unknown action 'SCMP_ACT_BOGUS'"),
    ({"defaultAction": "SCMP_ACT_NOTIFY"}, "SCMP_ACT_NOTIFY is not supported"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1},
     "errnoRet is not valid with SCMP_ACT_ALLOW"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]},
     "unknown architecture 'SCMP_ARCH_VAX'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]},
     "unknown flag 'SECCOMP_FILTER_FLAG_NOPE'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_LOG"}]},
     "syscalls[0].names must be a non-empty list"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
     "syscalls[0].args[0].index must be an integer in 0..5"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]},
     "syscalls[0].args[0]: unknown operator 'SCMP_CMP_ABOUT'"),
])  # fmt: skip
def test_invalid_profiles_are_refused_with_the_reason(profile: Any, message: str) -> None:
    with pytest.raises(RuntimeFailure) as info:
        seccomp.compile_profile(profile, "x86_64")
    assert str(info.value).startswith("seccomp: ") and message in str(info.value)


def test_a_filter_crosses_the_pipe_to_the_init_intact() -> None:
    filt = seccomp.compile_profile({**DOCKER, "flags": ["SECCOMP_FILTER_FLAG_LOG"]}, "x86_64")
    read_fd, write_fd = os.pipe()
    seccomp.send(write_fd, filt)
    os.close(write_fd)
    got = seccomp.receive(read_fd)
    assert got is not None
    assert (got.program, got.flags, got.syscall_nr) == (filt.program, 2, X86_64["seccomp"])
    assert seccomp.receive(read_fd) is None  # the runtime gave up: the init exits quietly
    os.close(read_fd)


def test_the_kernel_applies_64_bit_argument_rules() -> None:
    """Installed for real in a forked child: lseek offsets at or above 4 GiB fail."""
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_TSYNC"],
               "syscalls": [{"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": 75,
                             "args": [{"index": 1, "value": 1 << 32, "op": "SCMP_CMP_GE"}]}]}
    filt = seccomp.compile_profile(profile)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_fd)
            fd = os.memfd_create("seek")
            seccomp.install(filt)  # allowed without no_new_privs: the test runs as root
            results = []
            for offset in ((1 << 32) - 1, 1 << 32, (1 << 40) + 3):
                try:
                    results.append(str(os.lseek(fd, offset, os.SEEK_SET)))
                except OSError as e:
                    results.append(errno.errorcode[e.errno or 0])
            os.write(write_fd, " ".join(results).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    out = os.read(read_fd, 200).decode()
    os.close(read_fd)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert out == f"{(1 << 32) - 1} EOVERFLOW EOVERFLOW"


# --- containers: bkpy-runc and runc read the same config ---------------------------------


def _same(rt: Runtimes, args: list[str], **over: Any) -> tuple[int, str, str]:
    ours, runc = rt.both(args, **over)
    assert (ours.rc, ours.out, ours.err) == (runc.rc, runc.out, runc.err), (ours, runc)
    return ours.rc, ours.out, ours.err


def test_default_profile_denies_what_docker_denies_and_runs_ordinary_commands(
        rt: Runtimes) -> None:
    script = ("id; ls -d /bin /proc; cat /etc/group | wc -l; sleep 0.01 && echo slept;"
              " sh -c 'echo sub'; true & wait; echo bg=$?; grep '^Seccomp:' /proc/self/status;"
              " chroot / true && echo chroot ok; linux32 uname -m;"
              " busybox unshare -U true; echo unshare=$?;"
              " mount -t tmpfs none /tmp; echo mount=$?;"
              " busybox nsenter -t $$ -u true; echo nsenter=$?")
    rc, out, err = _same(rt, ["sh", "-c", script], **{"linux.seccomp": DOCKER})
    assert rc == 0
    assert out.startswith("uid=0(root) gid=0(root)\n/bin\n/proc\n6\n")
    for line in ("slept", "sub", "bg=0", "Seccomp:\t2", "chroot ok", "i686", "unshare=1",
                 "mount=1", "nsenter=1"):
        assert line in out.splitlines(), (line, out)
    assert "unshare(0x10000000): Operation not permitted" in err
    assert "setns(): can't reassociate to namespace 'uts': Operation not permitted" in err


def test_without_a_profile_the_same_unshare_succeeds(rt: Runtimes) -> None:
    """The EPERM above comes from the filter: user namespaces need no capability."""
    rc, out, _ = _same(rt, ["sh", "-c", "busybox unshare -U true; echo unshare=$?"])
    assert (rc, out) == (0, "unshare=0\n")


@pytest.mark.parametrize("nnp", [False, True])
def test_unprivileged_user_gets_the_filter_with_and_without_no_new_privs(
        rt: Runtimes, nnp: bool) -> None:
    # Without no_new_privs the filter must be loaded while CAP_SYS_ADMIN is still held.
    rc, out, _ = _same(rt, ["sh", "-c", "id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' "
                                        "/proc/self/status; busybox unshare -U true"],
                       **{"linux.seccomp": DOCKER, "process.noNewPrivileges": nnp,
                          "process.user": {"uid": 1000, "gid": 1000}})
    assert rc == 1
    assert out == f"1000\nCapEff:\t0000000000000000\nNoNewPrivs:\t{int(nnp)}\nSeccomp:\t2\n"


def test_custom_errno_rule_for_mkdir_only(rt: Runtimes) -> None:
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSPC}]}
    rc, out, err = _same(rt, ["sh", "-c", "mkdir /tmp/d; echo mkdir=$?; touch /tmp/f && "
                                          "ls /tmp && rm /tmp/f && echo rest ok"],
                         **{"linux.seccomp": profile})
    assert (rc, out) == (0, "mkdir=1\nf\nrest ok\n")
    assert err == "mkdir: can't create directory '/tmp/d': No space left on device\n"


def test_argument_conditional_rule_in_a_container(rt: Runtimes) -> None:
    # Refuse only world-writable modes: chmod(path, mode) / fchmodat(dirfd, path, mode).
    deny = [{"names": ["chmod"], "index": 1}, {"names": ["fchmodat"], "index": 2}]
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": d["names"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES,
         "args": [{"index": d["index"], "value": 0o002, "valueTwo": 0o002,
                   "op": "SCMP_CMP_MASKED_EQ"}]} for d in deny]}
    script = ("touch /tmp/f; chmod 640 /tmp/f && stat -c %a /tmp/f; chmod 666 /tmp/f;"
              " echo rc=$?; stat -c %a /tmp/f")
    rc, out, err = _same(rt, ["sh", "-c", script], **{"linux.seccomp": profile})
    assert (rc, out) == (0, "640\nrc=1\n640\n")
    assert "Permission denied" in err


def test_kill_action_ends_the_process_with_sigsys(rt: Runtimes) -> None:
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]}
    rc, out, err = _same(rt, ["sh", "-c", "mkdir /tmp/x; echo rc=$?"],
                         **{"linux.seccomp": profile})
    assert (rc, out, err) == (0, f"rc={128 + 31}\n", "Bad system call\n")


def test_emulated_arm64_runs_under_the_host_profile(rt: Runtimes, tmp_path: Any) -> None:
    arm64 = make_rootfs(str(tmp_path), "arm64")
    assert _same(rt, ["uname", "-m"], rootfs=arm64, **{"linux.seccomp": DOCKER}) == (
        0, "aarch64\n", "")
    rc, _, err = _same(rt, ["busybox", "unshare", "-U", "true"], rootfs=arm64,
                       **{"linux.seccomp": DOCKER})
    assert rc == 1 and "Operation not permitted" in err


def test_a_profile_for_the_emulated_arch_instead_of_the_host_breaks_qemu(
        rt: Runtimes, tmp_path: Any) -> None:
    """qemu's own syscalls are the host's: an arm64-only profile lacks e.g. arch_prctl."""
    arm64 = make_rootfs(str(tmp_path), "arm64")
    wrong = default_profile(DOCKER_CAPS, arch="arm64", kernel=(6, 1))
    rc, _, err = _same(rt, ["uname", "-m"], rootfs=arm64, **{"linux.seccomp": wrong})
    assert rc == 127 and "thread-local storage" in err


def test_invalid_profile_fails_create_with_one_line_and_leaves_nothing(rt: Runtimes) -> None:
    bad = {"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}]}
    res = rt.run("bkpy", rt.bundle(["true"], **{"linux.seccomp": bad}))
    assert res.rc == 1
    assert res.err == "bkpy-runc: seccomp: syscalls[0]: unknown action 'SCMP_ACT_BOGUS'\n"
    assert not os.path.exists(rt.roots["bkpy"]) or os.listdir(rt.roots["bkpy"]) == []


def test_too_large_filter_fails_with_one_line_and_leaves_nothing(rt: Runtimes) -> None:
    # Six 64-bit conditions on every syscall: far beyond the kernel's 4096 instructions.
    args = [{"index": i, "value": 1 << 40, "op": "SCMP_CMP_EQ"} for i in range(6)]
    huge = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": [n], "action": "SCMP_ACT_LOG", "args": args} for n in X86_64]}
    res = rt.run("bkpy", rt.bundle(["true"], **{"linux.seccomp": huge}))
    assert res.rc == 1
    assert res.err.startswith("bkpy-runc: seccomp: filter needs ")
    assert res.err.endswith(" BPF instructions (the kernel allows 4096)\n")
    assert os.listdir(rt.roots["bkpy"]) == []


def test_init_setup_errors_still_win_over_the_filter_handover(rt: Runtimes) -> None:
    from .bundle import config

    mounts = [*config(rt.rootfs, ["true"])["mounts"],
              {"destination": "/weird", "type": "nosuchfs", "source": "none"}]
    res = rt.run("bkpy", rt.bundle(["true"], mounts=mounts, **{"linux.seccomp": DOCKER}))
    assert res.rc == 1 and "/weird" in res.err and res.err.count("\n") == 1, res
    assert os.listdir(rt.roots["bkpy"]) == []


@pytest.mark.parametrize("runtime", ["bkpy", "runc"])
def test_separate_create_and_start_load_the_filter(rt: Runtimes, runtime: str,
                                                   tmp_path: Any) -> None:
    bundle = rt.bundle(["sh", "-c", "grep '^Seccomp:' /proc/self/status; busybox unshare -U true"],
                       **{"linux.seccomp": DOCKER})
    cid = f"sc-{runtime}-{os.getpid()}"
    log = os.path.join(str(tmp_path), "out.log")
    with open(log, "w") as out:  # the container keeps create's stdio
        proc = subprocess.run([*rt.argv(runtime), "create", "--bundle", bundle, cid], stdout=out,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=30,
                              check=False)
    assert proc.returncode == 0, open(log).read()
    assert rt.cmd(runtime, "start", cid).rc == 0
    deadline = time.monotonic() + 15
    while json.loads(rt.cmd(runtime, "state", cid).out)["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert rt.cmd(runtime, "delete", cid).rc == 0
    assert open(log).read() == (
        "Seccomp:\t2\nunshare: unshare(0x10000000): Operation not permitted\n")


def test_runtime_hooks_path_loads_the_filter_too(rt: Runtimes, tmp_path: Any) -> None:
    # Runtime-side hooks make a setup process fork the init: the handover must still work.
    hooks = {"createRuntime": [{"path": "/bin/true"}]}
    rc, out, _ = _same(rt, ["grep", "^Seccomp:", "/proc/self/status"], hooks=hooks,
                       **{"linux.seccomp": DOCKER})
    assert (rc, out) == (0, "Seccomp:\t2\n")


def test_pid1_is_the_filtered_user_process(rt: Runtimes) -> None:
    """No unfiltered init stays in the container: PID 1 is the user process, filtered."""
    rc, out, _ = _same(rt, ["grep", "^Seccomp:", "/proc/1/status"], **{"linux.seccomp": DOCKER})
    assert (rc, out) == (0, "Seccomp:\t2\n")
