"""The container's user process: executable lookup, environment, credentials, spawn."""

from __future__ import annotations

import os

from . import caps
from . import syscalls as sc
from .errors import RuntimeFailure
from .spec import Spec


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
    """Start the user process (vfork+exec via posix_spawn: no copy of this interpreter)."""
    try:
        return os.posix_spawn(exe, spec.args, dict(e.partition("=")[::2] for e in env),
                              setsigmask=(), setsigdef=sigs)
    except OSError as e:
        raise RuntimeFailure(f'exec: "{spec.args[0]}"', e) from None
