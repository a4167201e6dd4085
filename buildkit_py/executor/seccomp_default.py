"""Docker's default seccomp profile, evaluated for one process (``linux.seccomp``).

An allowlist: every syscall not allowed below fails with EPERM. Some rules only apply when
the process holds a capability (``mount`` needs CAP_SYS_ADMIN, ``reboot`` CAP_SYS_BOOT),
some only on certain architectures, and ``clone``/``personality``/``socket`` are allowed
only with harmless arguments. As Docker's ``GetDefaultProfile`` does, the conditions are
evaluated here, against the bounding capability set of the process, the host's
architecture and the running kernel, so the runtime receives a plain OCI profile.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from buildkit_py.platforms import host_platform

EPERM = 1
ENOSYS = 38
AF_VSOCK = 40
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
CLONE_NAMESPACE_FLAGS = 0x7E020000

# Syscalls allowed for everyone: harmless, or already limited by the kernel's own checks.
_ALLOWED = """
accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown
chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect
copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old
epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod
fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr
flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate
ftruncate64 futex futex_requeue futex_time64 futex_wait futex_waitv futex_wake futimesat
getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32
getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority
getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage
getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr
inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy
io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit
io_uring_enter io_uring_register io_uring_setup ipc kill landlock_add_rule
landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat listen
listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise
map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock
mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv
msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open
openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free
pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64
process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink
readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr
rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending
rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam
sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32
setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority
setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32
setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32
setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask
sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat
sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete
timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create
timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate
truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat utimensat_time64 utimes
vfork vmsplice wait4 waitid waitpid write writev
"""

# Docker's archMap: the host architecture (Go name) -> the seccomp architectures filtered.
ARCHITECTURES: dict[str, tuple[str, ...]] = {
    "amd64": ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"),
    "arm64": ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"),
    "mips64": ("SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"),
    "mips64n32": ("SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"),
    "mipsel64": ("SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"),
    "mipsel64n32": ("SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"),
    "s390x": ("SCMP_ARCH_S390X", "SCMP_ARCH_S390"),
    "riscv64": ("SCMP_ARCH_RISCV64",),
}
# Where Docker's arch conditions name an architecture differently from the platform.
_CONDITION_ARCH = {"386": "x86"}


@dataclass(frozen=True)
class Condition:
    """When a rule applies: every listed capability held, one of the arches, kernel >= ."""

    caps: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    min_kernel: tuple[int, int] | None = None


@dataclass(frozen=True)
class Rule:
    names: tuple[str, ...]
    action: str = "SCMP_ACT_ALLOW"
    args: tuple[tuple[int, int, int, str], ...] = ()  # (index, value, valueTwo, op)
    errno: int | None = None
    includes: Condition = Condition()
    excludes: Condition = Condition()


def _caps(*caps: str) -> Condition:
    return Condition(caps=caps)


def _arches(*arches: str) -> Condition:
    return Condition(arches=arches)


def _personality(value: int) -> Rule:
    return Rule(("personality",), args=((0, value, 0, "SCMP_CMP_EQ"),))


RULES: tuple[Rule, ...] = (
    Rule(tuple(_ALLOWED.split())),
    # Tracing another process is safe once the kernel checks seccomp on ptrace (4.8).
    Rule(("process_vm_readv", "process_vm_writev", "ptrace"),
         includes=Condition(min_kernel=(4, 8))),
    Rule(("socket",), args=((0, AF_VSOCK, 0, "SCMP_CMP_NE"),)),  # vsock reaches the host
    # personality(): Linux, 32-bit Linux, UNAME26 variants, and querying the current one.
    _personality(0x0), _personality(0x0008), _personality(0x20000), _personality(0x20008),
    _personality(0xFFFFFFFF),
    Rule(("sync_file_range2", "swapcontext"), includes=_arches("ppc64le")),
    Rule(("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
          "cacheflush", "set_tls"), includes=_arches("arm", "arm64")),
    Rule(("arch_prctl",), includes=_arches("amd64", "x32")),
    Rule(("modify_ldt",), includes=_arches("amd64", "x32", "x86")),
    Rule(("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"),
         includes=_arches("s390", "s390x")),
    Rule(("riscv_flush_icache",), includes=_arches("riscv64")),
    Rule(("open_by_handle_at",), includes=_caps("CAP_DAC_READ_SEARCH")),
    Rule(("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
          "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree",
          "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns",
          "syslog", "umount", "umount2", "unshare"), includes=_caps("CAP_SYS_ADMIN")),
    # Without CAP_SYS_ADMIN: clone only without namespace flags (flags are arg 1 on s390).
    Rule(("clone",), args=((0, CLONE_NAMESPACE_FLAGS, 0, "SCMP_CMP_MASKED_EQ"),),
         excludes=Condition(caps=("CAP_SYS_ADMIN",), arches=("s390", "s390x"))),
    Rule(("clone",), args=((1, CLONE_NAMESPACE_FLAGS, 0, "SCMP_CMP_MASKED_EQ"),),
         includes=_arches("s390", "s390x"), excludes=_caps("CAP_SYS_ADMIN")),
    # clone3 hides its flags in memory seccomp cannot read: ENOSYS makes libc use clone.
    Rule(("clone3",), action="SCMP_ACT_ERRNO", errno=ENOSYS, excludes=_caps("CAP_SYS_ADMIN")),
    Rule(("reboot",), includes=_caps("CAP_SYS_BOOT")),
    Rule(("chroot",), includes=_caps("CAP_SYS_CHROOT")),
    Rule(("delete_module", "init_module", "finit_module"), includes=_caps("CAP_SYS_MODULE")),
    Rule(("acct",), includes=_caps("CAP_SYS_PACCT")),
    Rule(("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev",
          "ptrace"), includes=_caps("CAP_SYS_PTRACE")),
    Rule(("iopl", "ioperm"), includes=_caps("CAP_SYS_RAWIO")),
    Rule(("settimeofday", "stime", "clock_settime", "clock_settime64"),
         includes=_caps("CAP_SYS_TIME")),
    Rule(("vhangup",), includes=_caps("CAP_SYS_TTY_CONFIG")),
    Rule(("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
         includes=_caps("CAP_SYS_NICE")),
    Rule(("syslog",), includes=_caps("CAP_SYSLOG")),
    Rule(("bpf",), includes=_caps("CAP_BPF")),
    Rule(("perf_event_open",), includes=_caps("CAP_PERFMON")),
)  # fmt: skip


def host_arch() -> str:
    """The host's architecture as Docker's arch conditions name it (``amd64``, ``x86``)."""
    arch = host_platform().architecture
    return _CONDITION_ARCH.get(arch, arch)


def kernel_version(release: str | None = None) -> tuple[int, int]:
    """(major, minor) of the running kernel (``6.1.0-18-amd64`` -> (6, 1))."""
    parts = (release or os.uname().release).split(".")
    try:
        minor = parts[1]
        digits = len(minor) - len(minor.lstrip("0123456789"))
        return int(parts[0]), int(minor[:digits] or 0)
    except (IndexError, ValueError):
        return (0, 0)


def _applies(rule: Rule, caps: frozenset[str], arch: str, kernel: tuple[int, int]) -> bool:
    """Docker's include/exclude evaluation: excludes win, then every include must hold."""
    exc, inc = rule.excludes, rule.includes
    if arch in exc.arches or any(c in caps for c in exc.caps):
        return False
    if exc.min_kernel is not None and kernel >= exc.min_kernel:
        return False
    if inc.arches and arch not in inc.arches:
        return False
    if not all(c in caps for c in inc.caps):
        return False
    return inc.min_kernel is None or kernel >= inc.min_kernel


@lru_cache(maxsize=16)
def _selected(caps: frozenset[str], arch: str, kernel: tuple[int, int]) -> tuple[Rule, ...]:
    return tuple(r for r in RULES if _applies(r, caps, arch, kernel))


def default_profile(capabilities: Iterable[str], *, arch: str | None = None,
                    kernel: tuple[int, int] | None = None) -> dict[str, Any]:
    """The OCI ``linux.seccomp`` object for a process whose bounding set is
    ``capabilities`` (``CAP_*`` names), on ``arch`` (default: this host) and ``kernel``."""
    arch = arch or host_arch()
    caps = frozenset(c.upper() if c.upper().startswith("CAP_") else "CAP_" + c.upper()
                     for c in capabilities)
    syscalls: list[dict[str, Any]] = []
    for rule in _selected(caps, arch, kernel or kernel_version()):
        entry: dict[str, Any] = {"names": list(rule.names), "action": rule.action}
        if rule.args:
            entry["args"] = [{"index": i, "value": v, "valueTwo": v2, "op": op}
                             for i, v, v2, op in rule.args]
        if rule.errno is not None:
            entry["errnoRet"] = rule.errno
        syscalls.append(entry)
    profile: dict[str, Any] = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": EPERM}
    if arch in ARCHITECTURES:
        profile["architectures"] = list(ARCHITECTURES[arch])
    profile["syscalls"] = syscalls
    return profile
