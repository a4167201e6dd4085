"""Linux capabilities: names, bounding-set drop and the final capset (runc's order)."""

from __future__ import annotations

from . import syscalls as sc
from .errors import RuntimeFailure

CAP_NAMES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)
_BY_NAME = {"CAP_" + n: i for i, n in enumerate(CAP_NAMES)}


_last: list[int] = []


def last_cap() -> int:
    """Highest capability number the running kernel knows (read once)."""
    if not _last:
        try:
            with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
                _last.append(int(f.read()))
        except (OSError, ValueError):
            _last.append(len(CAP_NAMES) - 1)
    return _last[0]


def mask(names: list[str] | None, top: int) -> int:
    """Bit mask of known capability names; unknown or unsupported ones are ignored like runc."""
    bits = 0
    for name in names or []:
        key = name.upper()
        idx = _BY_NAME.get(key if key.startswith("CAP_") else "CAP_" + key)
        if idx is not None and idx <= top:
            bits |= 1 << idx
    return bits


class CapSets:
    __slots__ = ("ambient", "bounding", "effective", "inheritable", "permitted")

    def __init__(self, spec_caps: dict[str, list[str]]) -> None:
        top = last_cap()
        self.bounding = mask(spec_caps.get("bounding"), top)
        self.effective = mask(spec_caps.get("effective"), top)
        self.permitted = mask(spec_caps.get("permitted"), top)
        self.inheritable = mask(spec_caps.get("inheritable"), top)
        self.ambient = mask(spec_caps.get("ambient"), top)


def drop_bounding(caps: CapSets) -> None:
    """Drop every capability not in the bounding set (needs CAP_SETPCAP, so before setuid)."""
    for idx in range(last_cap() + 1):
        if not caps.bounding >> idx & 1:
            try:
                sc.prctl(sc.PR_CAPBSET_DROP, idx)
            except OSError as e:
                if e.errno != 22:  # EINVAL: the kernel does not know this capability
                    what = f"drop bounding capability CAP_{CAP_NAMES[idx]}"
                    raise RuntimeFailure(what, e) from None


def apply(caps: CapSets) -> None:
    """Set effective/permitted/inheritable then raise ambient caps (after the user switch).

    Capabilities this runtime does not hold itself are left out instead of failing the run.
    """
    _eff, have, _inh = sc.capget()
    try:
        sc.capset(caps.effective & have, caps.permitted & have, caps.inheritable & have)
    except OSError as e:
        raise RuntimeFailure("set capabilities", e) from None
    try:
        sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError:
        return
    for idx in range(last_cap() + 1):
        if caps.ambient >> idx & 1:
            try:
                sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE, idx)
            except OSError:
                pass  # like runc: ambient needs the cap in permitted+inheritable; skip otherwise
