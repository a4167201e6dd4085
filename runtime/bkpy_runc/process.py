"""The container's user process: executable lookup, environment, credentials, exec."""

from __future__ import annotations

import _signal
import os

from . import caps, paths, signals
from . import syscalls as sc
from .errors import RuntimeFailure
from .spec import Spec

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~15 ms of start-up; annotations are lazy
    from typing import NoReturn

_CAP_SYS_ADMIN = 1 << 21
# (effective, permitted) bits held only until the seccomp filter is loaded: without
# no_new_privs the kernel wants CAP_SYS_ADMIN for it, which the process may not keep.
_until_filter = [0, 0]


def environment(spec: Spec) -> list[str]:
    """The spec's env; an unset or empty HOME is set from the container's /etc/passwd, as
    runc does (an empty one in place, a missing one appended)."""
    env = list(spec.env)
    at = next((i for i, e in enumerate(env) if e.startswith("HOME=")), None)
    if at is None:
        env.append("HOME=" + _home_of(spec.uid))
    elif env[at] == "HOME=":
        env[at] = "HOME=" + _home_of(spec.uid)
    return env


def _home_of(uid: int) -> str:
    """The home field of the first passwd entry for ``uid`` (empty if the entry has none),
    "/" without one: runc's parsing (a short line has empty fields, a bad number is 0)."""
    try:
        with open("/etc/passwd", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.strip().split(":")
                if fields == [""]:
                    continue
                fields += [""] * (7 - len(fields))
                digits = fields[2][1:] if fields[2][:1] in ("+", "-") else fields[2]
                entry_uid = int(fields[2]) if digits.isascii() and digits.isdigit() else 0
                if entry_uid == uid:
                    return fields[5]
    except OSError:
        pass
    return "/"


def lookup(spec: Spec, env: list[str]) -> str:
    """Resolve args[0] like Go's exec.LookPath with the container's PATH (runc does this
    before the container is reported as created, so a missing binary fails ``create``)."""
    name = spec.args[0]
    what = f'exec: "{name}"'
    if "/" in name:
        path = name if name.startswith("/") else os.path.join(spec.cwd, name)
        if _executable(path):
            return name
        err = os.strerror(13) if os.path.exists(path) else os.strerror(2)
        raise RuntimeFailure(what, err)
    search = next((e[5:] for e in env if e.startswith("PATH=")), "")
    for d in search.split(":") if search else []:
        cand = os.path.join(d or ".", name)
        if _executable(cand if cand.startswith("/") else os.path.join(spec.cwd, cand)):
            return cand
    raise RuntimeFailure(what, "executable file not found in $PATH")


def _executable(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (st.st_mode & 0o170000) == 0o100000 and st.st_mode & 0o111 != 0


def ensure_cwd(spec: Spec) -> None:
    """runc creates a missing working directory (root-owned, 0755) before starting."""
    try:
        paths.makedirs(spec.cwd)
    except OSError as e:
        raise RuntimeFailure(f"create cwd {spec.cwd}", e) from None


def preload(spec: Spec) -> None:
    """Import modules the user-process path needs before pivot_root hides the stdlib."""
    if spec.rlimits:
        import resource  # noqa: F401


def _set_rlimits(spec: Spec) -> None:
    if not spec.rlimits:
        return
    import resource  # preloaded before pivot_root

    for rl in spec.rlimits:
        name = str(rl.get("type", ""))
        res = getattr(resource, name, None) if name.startswith("RLIMIT_") else None
        if not isinstance(res, int):
            raise RuntimeFailure(f"setrlimit {name}", "unknown resource")
        soft, hard = (resource.RLIM_INFINITY if v >= 2**63 - 1 else v
                      for v in (int(rl.get("soft", 0)), int(rl.get("hard", 0))))
        try:
            resource.setrlimit(res, (soft, hard))
        except (OSError, ValueError) as e:
            raise RuntimeFailure(f"setrlimit {name}", e) from None


def become_user(spec: Spec, keep_fd: int, preserve_fds: int) -> None:
    """Turn the init into the process owner (runc's order): limits, bounding set, cwd,
    user and groups, capabilities, no_new_privs, umask; only stdio stays open.

    The user process inherits these credentials through execve (:func:`exec_user`).
    """
    _set_rlimits(spec)
    capsets = caps.CapSets(spec.capabilities)
    caps.drop_bounding(capsets)
    if spec.seccomp_filter is not None and not spec.no_new_privileges:
        _until_filter[:] = [_CAP_SYS_ADMIN & ~capsets.effective,
                            _CAP_SYS_ADMIN & ~capsets.permitted]
        capsets.effective |= _CAP_SYS_ADMIN
        capsets.permitted |= _CAP_SYS_ADMIN
    try:
        os.chdir(spec.cwd)
    except OSError as e:
        raise RuntimeFailure(f"chdir to cwd {spec.cwd}", e) from None
    try:
        sc.prctl(sc.PR_SET_KEEPCAPS, 1)
        os.setgroups(spec.additional_gids)
        os.setgid(spec.gid)
        os.setuid(spec.uid)
        sc.prctl(sc.PR_SET_KEEPCAPS, 0)
    except OSError as e:
        raise RuntimeFailure(f"set user {spec.uid}:{spec.gid}", e) from None
    caps.apply(capsets)
    if spec.no_new_privileges:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    os.umask(spec.umask)
    first = 3 + preserve_fds
    if keep_fd >= first:  # keep_fd is close-on-exec: it reports exec errors, then closes
        os.closerange(first, keep_fd)
        os.closerange(keep_fd + 1, 1 << 20)
    else:
        os.closerange(first, 1 << 20)


def _drop_until_filter() -> None:
    eff, perm, inh = sc.capget()
    sc.capset(eff & ~_until_filter[0], perm & ~_until_filter[1], inh)


def exec_user(spec: Spec, exe: str, env: list[str]) -> NoReturn:
    """Replace this init with the user process, which becomes the container's PID 1 as
    under runc (``$$`` is 1, ``/proc/1`` is the user's command). The seccomp filter is
    loaded last, just before execve."""
    # execve resets caught signals itself, not ignored ones (Python ignores SIGPIPE).
    for s in signals.catchable():
        if _signal.getsignal(s) == _signal.SIG_IGN:
            _signal.signal(s, _signal.SIG_DFL)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
    if spec.seccomp_filter is not None:
        from . import seccomp  # imported by the runtime before the fork that made this init

        seccomp.install(spec.seccomp_filter)
        if any(_until_filter):
            try:
                _drop_until_filter()
            except OSError as e:
                raise RuntimeFailure("seccomp: drop CAP_SYS_ADMIN after loading", e) from None
    try:
        os.execve(exe, spec.args, dict(e.partition("=")[::2] for e in env))
    except OSError as e:
        raise RuntimeFailure(f'exec: "{spec.args[0]}"', e) from None
