"""The container's user process: executable lookup, environment, credentials, spawn."""

from __future__ import annotations

import _signal
import os

from . import caps, report
from . import syscalls as sc
from .errors import RuntimeFailure
from .spec import Spec

_CAP_SYS_ADMIN = 1 << 21
_PR_SET_DUMPABLE = 4
# (effective, permitted) bits held only until the seccomp filter is loaded: without
# no_new_privs the kernel wants CAP_SYS_ADMIN for it, which the process may not keep.
_until_filter = [0, 0]


def environment(spec: Spec) -> list[str]:
    """The spec's env; HOME is added from the container's /etc/passwd when missing (runc)."""
    env = list(spec.env)
    if not any(e.startswith("HOME=") for e in env):
        env.append("HOME=" + _home_of(spec.uid))
    return env


def _home_of(uid: int) -> str:
    try:
        with open("/etc/passwd", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
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
        os.makedirs(spec.cwd, 0o755, exist_ok=True)
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

    The init keeps these credentials: the user process it spawns inherits them through
    execve, and an init without privileges is no extra power inside the container.
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
    if keep_fd >= first:  # keep_fd is close-on-exec: it reports spawn errors, then closes
        os.closerange(first, keep_fd)
        os.closerange(keep_fd + 1, 1 << 20)
    else:
        os.closerange(first, 1 << 20)


def spawn(spec: Spec, exe: str, env: list[str], sigs: list[int]) -> int:
    """Start the user process (vfork+exec via posix_spawn: no copy of this interpreter,
    unless a seccomp filter must be loaded in between)."""
    env_map = dict(e.partition("=")[::2] for e in env)
    if spec.seccomp_filter is not None:
        return _spawn_filtered(spec, exe, env_map, sigs)
    try:
        return os.posix_spawn(exe, spec.args, env_map, setsigmask=(), setsigdef=sigs)
    except OSError as e:
        raise RuntimeFailure(f'exec: "{spec.args[0]}"', e) from None


def _drop_until_filter() -> None:
    eff, perm, inh = sc.capget()
    sc.capset(eff & ~_until_filter[0], perm & ~_until_filter[1], inh)


def _spawn_filtered(spec: Spec, exe: str, env: dict[str, str], sigs: list[int]) -> int:
    """fork+exec: the child loads the seccomp filter as its last step before execve, so
    the filter binds the user process only, never this init."""
    assert spec.seccomp_filter is not None
    from . import seccomp  # imported by the runtime before the fork that made this init

    # The filter does not bind this init: it must not be a way around it, so no ptrace,
    # /proc/1/mem or pidfd_getfd for the user process (exec makes that dumpable again).
    sc.prctl(_PR_SET_DUMPABLE, 0)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)  # EOF: the exec succeeded; bytes: why not
    pid = os.fork()
    if pid == 0:
        try:
            os.close(err_r)
            # posix_spawn's setsigdef: execve resets caught signals itself, not ignored ones.
            for s in sigs:
                if _signal.getsignal(s) == _signal.SIG_IGN:
                    _signal.signal(s, _signal.SIG_DFL)
            _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
            seccomp.install(spec.seccomp_filter)
            if any(_until_filter):
                try:
                    _drop_until_filter()
                except OSError as e:
                    raise RuntimeFailure("seccomp: drop CAP_SYS_ADMIN after loading", e) from None
            try:
                os.execve(exe, spec.args, env)
            except OSError as e:
                raise RuntimeFailure(f'exec: "{spec.args[0]}"', e) from None
        except BaseException as e:  # a forked child must never return
            try:
                os.write(err_w, report.describe(e).encode())
            finally:
                os._exit(127)
    os.close(err_w)
    if any(_until_filter):
        try:
            _drop_until_filter()  # the init keeps the process's capabilities, no more
        except OSError as e:
            raise RuntimeFailure("drop CAP_SYS_ADMIN kept for seccomp", e) from None
    chunks = []
    while chunk := os.read(err_r, 4096):
        chunks.append(chunk)
    os.close(err_r)
    if chunks:
        os.waitpid(pid, 0)
        raise RuntimeFailure(b"".join(chunks).decode(errors="replace"))
    return pid
