"""Joining or creating the namespaces listed in ``linux.namespaces``."""

from __future__ import annotations

import os

from . import syscalls as sc
from .errors import RuntimeFailure
from .spec import Spec


def enter(spec: Spec, skip: tuple[str, ...] = ()) -> None:
    """setns() into namespaces given by path, unshare() the rest, except kinds in ``skip``.

    A fresh network namespace gets its loopback interface brought up, as runc does.
    """
    if "mount" not in spec.ns_kinds:
        raise RuntimeFailure("config.json", "a mount namespace is required")
    new = 0
    for ns in spec.namespaces:
        if ns.kind in skip:
            continue
        if not ns.path:
            new |= ns.flag
            continue
        _join(ns.path, ns.flag, ns.kind)
    try:
        if new:
            sc.unshare(new)
    except OSError as e:
        raise RuntimeFailure("unshare namespaces", e) from None
    if new & sc.CLONE_NEWNET:
        try:
            sc.bring_loopback_up()
        except OSError as e:
            raise RuntimeFailure("bring up loopback", e) from None


def enter_only(spec: Spec, kind: str) -> None:
    """Just one namespace kind (pid: applies to the caller's next child; cgroup: rooted at
    the cgroup the caller is in, so only after joining the container's cgroups)."""
    for ns in spec.namespaces:
        if ns.kind != kind:
            continue
        if ns.path:
            _join(ns.path, ns.flag, kind)
            continue
        try:
            sc.unshare(ns.flag)
        except OSError as e:
            raise RuntimeFailure(f"unshare {kind} namespace", e) from None


def _join(path: str, flag: int, kind: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            sc.setns(fd, flag)
        finally:
            os.close(fd)
    except OSError as e:
        raise RuntimeFailure(f"join {kind} namespace {path}", e) from None


def set_names(spec: Spec) -> None:
    try:
        if spec.hostname is not None and "uts" in spec.ns_kinds:
            sc.sethostname(spec.hostname)
        if spec.domainname is not None and "uts" in spec.ns_kinds:
            sc.setdomainname(spec.domainname)
    except OSError as e:
        raise RuntimeFailure("sethostname", e) from None

