"""Docker's default seccomp profile: how it is evaluated, and RUN steps under it."""

from __future__ import annotations

import platform as host
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from buildkit_py import platforms
from buildkit_py.executor import ExecRequest, Executor
from buildkit_py.executor.seccomp_default import default_profile, host_arch, kernel_version
from buildkit_py.executor.spec import DEFAULT_CAPS, SpecInput, build_spec
from buildkit_py.executor.user import Identity
from tests.executor.conftest import Result, make_busybox_rootfs, run

Sh = Callable[..., Result]


def _allowed(profile: dict[str, Any]) -> set[str]:
    """Names allowed without argument conditions."""
    return {n for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and "args" not in r
            for n in r["names"]}


def _rules_for(profile: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [r for r in profile["syscalls"] if name in r["names"]]


def _spec(security: str) -> dict[str, Any]:
    return build_spec(SpecInput(rootfs=Path("/r"), args=["true"], env=[], cwd="/",
                                identity=Identity(0, 0, (0,)), security=security))


def test_sandbox_spec_carries_the_default_profile_and_insecure_none() -> None:
    assert _spec("sandbox")["linux"]["seccomp"] == default_profile(DEFAULT_CAPS)
    assert "seccomp" not in _spec("insecure")["linux"]


def test_default_capabilities_profile() -> None:
    p = default_profile(DEFAULT_CAPS, arch="amd64", kernel=(6, 1))
    assert (p["defaultAction"], p["defaultErrnoRet"]) == ("SCMP_ACT_ERRNO", 1)
    assert p["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    allowed = _allowed(p)
    assert len(allowed) > 340
    assert {"read", "execve", "openat", "wait4", "arch_prctl", "modify_ldt", "ptrace",
            "chroot"} <= allowed  # chroot: CAP_SYS_CHROOT is a default capability
    assert not {"mount", "unshare", "setns", "reboot", "bpf", "keyctl", "clone", "clone3",
                "socket", "personality", "arm_fadvise64_64", "kcmp", "iopl"} & allowed
    assert _rules_for(p, "clone") == [{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
        {"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]
    assert _rules_for(p, "clone3") == [
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    assert [r["args"] for r in _rules_for(p, "socket")] == [
        [{"index": 0, "value": 40, "valueTwo": 0, "op": "SCMP_CMP_NE"}]]
    assert sorted(r["args"][0]["value"] for r in _rules_for(p, "personality")) == [
        0, 8, 0x20000, 0x20008, 0xFFFFFFFF]


def test_capabilities_unlock_their_syscalls() -> None:
    admin = default_profile([*DEFAULT_CAPS, "CAP_SYS_ADMIN"], arch="amd64", kernel=(6, 1))
    assert {"mount", "umount2", "unshare", "setns", "clone", "clone3", "sethostname"} <= (
        _allowed(admin))
    # With CAP_SYS_ADMIN neither the clone flag check nor clone3's ENOSYS remain.
    assert all("args" not in r for r in _rules_for(admin, "clone"))
    assert all(r["action"] == "SCMP_ACT_ALLOW" for r in _rules_for(admin, "clone3"))
    more = default_profile(["SYS_BOOT", "cap_sys_ptrace", "CAP_SYS_TIME", "CAP_SYS_NICE"],
                           arch="amd64", kernel=(6, 1))
    assert {"reboot", "kcmp", "pidfd_getfd", "settimeofday", "clock_settime", "mbind"} <= (
        _allowed(more))
    assert "chroot" not in _allowed(more)  # no CAP_SYS_CHROOT in that set


def test_architecture_and_kernel_conditions() -> None:
    arm = default_profile(DEFAULT_CAPS, arch="arm64", kernel=(6, 1))
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert {"arm_fadvise64_64", "cacheflush", "set_tls"} <= _allowed(arm)
    assert not {"arch_prctl", "modify_ldt"} & _allowed(arm)
    s390 = default_profile(DEFAULT_CAPS, arch="s390x", kernel=(6, 1))
    assert [r["args"][0]["index"] for r in _rules_for(s390, "clone")] == [1]
    assert "ptrace" not in _allowed(default_profile(DEFAULT_CAPS, arch="amd64", kernel=(4, 4)))
    assert "architectures" not in default_profile(DEFAULT_CAPS, arch="ppc64le")


def test_host_arch_and_kernel_version_parsing() -> None:
    assert host_arch() in ("amd64", "arm64")
    assert kernel_version("6.1.0-18-amd64") == (6, 1)
    assert kernel_version("4.19rc1") == (4, 19)
    assert kernel_version("weird") == (0, 0)


@pytest.mark.parametrize(("machine", "arch"), [("i686", "x86"), ("armv7l", "arm"),
                                               ("aarch64", "arm64"), ("x86_64", "amd64")])
def test_host_arch_names_the_machine_as_docker_conditions_do(
        monkeypatch: pytest.MonkeyPatch, machine: str, arch: str) -> None:
    monkeypatch.setattr(host, "machine", lambda: machine)
    platforms.host_platform.cache_clear()
    try:
        assert host_arch() == arch
    finally:
        platforms.host_platform.cache_clear()


def test_each_profile_is_a_fresh_object() -> None:
    a = default_profile(DEFAULT_CAPS)
    a["syscalls"][0]["names"].append("kexec_load")
    assert "kexec_load" not in default_profile(DEFAULT_CAPS)["syscalls"][0]["names"]


# --- RUN steps, once per runtime -----------------------------------------------------------


def test_sandbox_step_is_filtered_and_ordinary_commands_work(sh: Sh) -> None:
    res = sh("grep '^Seccomp:' /proc/self/status; ls / | wc -l; id -u; cat /etc/group | wc -l;"
             " sleep 0.01; echo done; busybox unshare -U true || echo unshare=$?")
    assert res.code == 0, res
    assert res.stdout.splitlines() == ["Seccomp:\t2", "8", "0", "6", "done", "unshare=1"]
    assert "Operation not permitted" in res.stderr


def test_insecure_step_has_no_filter(sh: Sh) -> None:
    res = sh("grep '^Seccomp:' /proc/self/status; busybox unshare -U true && echo unshare ok",
             security="insecure")
    assert res.stdout.splitlines() == ["Seccomp:\t0", "unshare ok"], res


@pytest.mark.parametrize("user", ["alice", "root"])
def test_filter_applies_to_every_user(sh: Sh, user: str) -> None:
    res = sh("id -un; grep '^Seccomp:' /proc/self/status; mkdir -p /tmp/x && echo ok", user=user)
    assert res.stdout.splitlines() == [user, "Seccomp:\t2", "ok"], res


def test_emulated_arm64_step_runs_under_the_host_profile(executor: Executor,
                                                         tmp_path: Path) -> None:
    root = make_busybox_rootfs(tmp_path / "arm64", arch="arm64")
    res = run(executor, ExecRequest(rootfs=root, args=["uname", "-m"], platform="linux/arm64"))
    assert (res.code, res.stdout) == (0, "aarch64\n")
    res = run(executor, ExecRequest(rootfs=root, args=["busybox", "unshare", "-U", "true"],
                                    platform="linux/arm64"))
    assert res.code == 1 and "Operation not permitted" in res.stderr
