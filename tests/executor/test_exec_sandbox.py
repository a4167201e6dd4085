"""Network modes, capabilities, masked paths, cancellation and foreign architectures."""

from __future__ import annotations

import os
import resource
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from buildkit_py.executor import ExecCancelledError, ExecRequest, Executor
from buildkit_py.executor.spec import DEFAULT_CAPS, all_capabilities
from tests.executor.conftest import Result, make_busybox_rootfs, run

Sh = Callable[..., Result]

_CAP_BITS = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_FSETID": 4, "CAP_KILL": 5,
    "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_RAW": 13, "CAP_SYS_CHROOT": 18, "CAP_MKNOD": 27, "CAP_AUDIT_WRITE": 29,
    "CAP_SETFCAP": 31,
}  # fmt: skip


def _interfaces(res: Result) -> list[str]:
    return sorted(line.split(":")[1].strip() for line in res.stdout.splitlines()
                  if line[:1].isdigit())  # fmt: skip


@pytest.mark.parametrize("network", ["none", "default"])
def test_none_and_default_network_have_only_loopback(sh: Sh, network: str) -> None:
    res = sh("ip -o link", network=network)
    assert _interfaces(res) == ["lo"]
    assert "UP" in res.stdout.split("lo:")[1].splitlines()[0]


def test_host_network_shares_the_host_interfaces(sh: Sh) -> None:
    host = sorted(os.listdir("/sys/class/net"))
    res = sh("ls /sys/class/net", network="host")
    assert sorted(res.stdout.split()) == host


def _cap_eff(res: Result) -> int:
    for line in res.stdout.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    raise AssertionError(res.stdout + res.stderr)


def test_sandbox_has_dockers_default_capabilities(sh: Sh) -> None:
    expected = sum(1 << _CAP_BITS[c] for c in DEFAULT_CAPS)
    assert _cap_eff(sh("grep Cap /proc/self/status")) == expected


def test_insecure_sees_all_capabilities(sh: Sh) -> None:
    with open("/proc/self/status") as fh:
        ours = next(int(ln.split()[1], 16) for ln in fh if ln.startswith("CapBnd:"))
    assert _cap_eff(sh("grep Cap /proc/self/status", security="insecure")) == ours
    assert len(all_capabilities()) == bin(ours).count("1")


def test_sandbox_masks_proc_paths_and_mounts_sys_read_only(sh: Sh) -> None:
    # /proc/timer_list is masked with /dev/null; /sys/firmware with an empty read-only tmpfs.
    res = sh("wc -c < /proc/timer_list; ls /sys/firmware | wc -l; touch /sys/x 2>/dev/null || "
             "echo ro; echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null || echo procsys-ro")
    assert res.stdout.split() == ["0", "0", "ro", "procsys-ro"]


def test_insecure_unmasks_proc_and_allows_devices(sh: Sh) -> None:
    block = next(e.name for e in os.scandir("/dev") if stat.S_ISBLK(e.stat().st_mode))
    script = f"wc -c < /proc/timer_list; test -b /dev/{block} && echo dev || echo nodev"
    timer_list, dev = sh(script, security="insecure").stdout.split()
    assert int(timer_list) > 0 and dev == "dev"
    assert sh(script).stdout.split() == ["0", "nodev"]


def test_rlimit_nofile_is_raised(sh: Sh) -> None:
    # 1048576 as in BuildKit, capped at our own hard limit when we cannot raise it.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    expected = 1048576 if "CAP_SYS_RESOURCE" in all_capabilities() else min(1048576, hard)
    assert int(sh("ulimit -n").stdout) == expected


def test_cancel_kills_a_long_process_quickly_and_cleans_up(
    executor: Executor, rootfs: Path
) -> None:
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    start = time.monotonic()
    with pytest.raises(ExecCancelledError):
        run(executor, ExecRequest(rootfs=rootfs, args=["sleep", "100"]), cancel=cancel)
    assert time.monotonic() - start < 5
    assert os.listdir(executor.bundle_root) == []
    assert [p for p in os.listdir(executor.state_dir / "runtime") if p.startswith("bkpy-")] == []


def test_cancel_set_before_start_runs_nothing(executor: Executor, rootfs: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ExecCancelledError):
        run(executor, ExecRequest(rootfs=rootfs, args=["touch", "/ran"]), cancel=cancel)
    assert not (rootfs / "ran").exists()


def test_arm64_step_runs_under_emulation(executor: Executor, tmp_path: Path) -> None:
    root = make_busybox_rootfs(tmp_path / "arm64", arch="arm64")
    res = run(executor, ExecRequest(rootfs=root, args=["uname", "-m"], platform="linux/arm64"))
    assert (res.code, res.stdout) == (0, "aarch64\n")
