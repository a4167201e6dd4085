"""What a container sees under bkpy-runc matches what it sees under runc (same bundle)."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import time

import pytest

from .bundle import DOCKER_CAPS, make_rootfs
from .conftest import Runtimes


def _same(rt: Runtimes, script: str, **over: object) -> str:
    """Run ``sh -c script`` under both runtimes; assert identical output and status."""
    ours, runc = rt.both(["sh", "-c", script], **over)
    assert (ours.rc, ours.out) == (runc.rc, runc.out), (ours, runc)
    assert ours.err == runc.err == "", (ours, runc)
    return ours.out


def _mounts(mountinfo: str) -> list[tuple[str, str, str]]:
    """(mount point, fs type, ro|rw) per line of /proc/self/mountinfo."""
    out = []
    for line in mountinfo.splitlines():
        left, right = line.split(" - ", 1)
        fields = left.split()
        out.append((fields[4], right.split()[0], fields[5].split(",")[0]))
    return out


def test_identity_hostname_env_and_cwd_match_runc(rt: Runtimes) -> None:
    out = _same(rt, "id; hostname; env | sort; pwd",
                **{"process.env": ["PATH=/bin", "FOO=bar baz", "EMPTY="]})
    assert "uid=0(root) gid=0(root)" in out
    assert "buildkitsandbox" in out and "FOO=bar baz" in out and "HOME=/root" in out


def test_empty_home_is_set_in_place_like_runc(rt: Runtimes) -> None:
    out = _same(rt, 'echo "[$HOME]"',
                **{"process.env": ["HOME=", "PATH=/bin"], "process.user": {"uid": 4321, "gid": 0}})
    assert out == "[/]\n"  # no passwd entry for the uid


def test_uid_1000_with_additional_gids_cwd_and_home_match_runc(rt: Runtimes) -> None:
    out = _same(rt, "id; pwd; echo $HOME; touch f && stat -c '%u:%g' f; rm f",
                **{"process.user": {"uid": 1000, "gid": 1000, "additionalGids": [2000, 3000]},
                   "process.cwd": "/home/user"})
    assert out.splitlines()[0] == (
        "uid=1000(user) gid=1000(user) groups=2000(extra),3000(other)")
    assert out.splitlines()[1:] == ["/home/user", "/home/user", "1000:1000"]


@pytest.mark.parametrize("user", [{"uid": 0, "gid": 0}, {"uid": 1000, "gid": 1000}])
def test_capability_sets_match_runc(rt: Runtimes, user: dict[str, int]) -> None:
    caps = {k: list(DOCKER_CAPS) for k in ("bounding", "effective", "permitted", "inheritable",
                                           "ambient")}
    out = _same(rt, "grep -E '^(Cap|NoNewPrivs)' /proc/self/status",
                **{"process.user": user, "process.capabilities": caps,
                   "process.noNewPrivileges": True})
    assert "CapBnd:\t00000000a80425fb" in out and "NoNewPrivs:\t1" in out


def test_default_docker_caps_for_root(rt: Runtimes) -> None:
    out = _same(rt, "grep Cap /proc/self/status")
    assert "CapEff:\t00000000a80425fb" in out


@pytest.mark.parametrize("readonly", [False, True])
def test_mount_table_matches_runc(rt: Runtimes, readonly: bool) -> None:
    ours, runc = rt.both(["cat", "/proc/self/mountinfo"], **{"root.readonly": readonly})
    assert ours.rc == runc.rc == 0, (ours, runc)
    assert _mounts(ours.out) == _mounts(runc.out)
    table = {m[0]: m for m in _mounts(ours.out)}
    assert table["/"][2] == ("ro" if readonly else "rw")
    assert table["/sys"][1:] == ("sysfs", "ro") and table["/proc/sys"][2] == "ro"
    assert table["/dev"][1] == "tmpfs" and table["/sys/fs/cgroup"][1] == "tmpfs"


def test_dev_contents_match_runc(rt: Runtimes) -> None:
    out = _same(rt, "ls -l /dev | awk '{print $1, $3, $4, $5, $6}'; ls /dev; readlink /dev/ptmx")
    for name in ("null", "zero", "full", "random", "urandom", "tty", "ptmx", "stdin", "shm"):
        assert f"\n{name}\n" in out
    assert "crw-rw-rw- root root 1, 3" in out and out.endswith("pts/ptmx\n")


def test_fresh_network_namespace_has_only_loopback_up(rt: Runtimes) -> None:
    out = _same(rt, "ip addr; tail -n +3 /proc/net/dev | cut -d: -f1")
    assert "lo: <LOOPBACK,UP,LOWER_UP>" in out and "inet 127.0.0.1/8" in out
    assert out.rstrip().splitlines()[-1].strip() == "lo"


def test_host_network_when_namespace_omitted(rt: Runtimes) -> None:
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    out = _same(rt, "tail -n +3 /proc/net/dev | awk -F: '{gsub(/ /, \"\", $1); print $1}' | sort",
                **{"linux.namespaces": namespaces})
    with open("/proc/net/dev") as f:
        host = sorted(line.split(":")[0].strip() for line in f.readlines()[2:])
    assert out.split() == host


def test_network_namespace_joined_by_path(rt: Runtimes) -> None:
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    namespaces.append({"type": "network", "path": f"/proc/{os.getpid()}/ns/net"})
    ours, runc = rt.both(["readlink", "/proc/self/ns/net"], **{"linux.namespaces": namespaces})
    assert ours.out.strip() == runc.out.strip() == os.readlink("/proc/self/ns/net")


@pytest.mark.parametrize("code", [0, 3, 255])
def test_exit_code_matches_runc(rt: Runtimes, code: int) -> None:
    ours, runc = rt.both(["sh", "-c", f"exit {code}"])
    assert ours.rc == runc.rc == code


def test_death_by_signal_is_128_plus_signal(rt: Runtimes) -> None:
    # Under runc the shell is PID 1 and can't SIGKILL itself, so compare a child's death.
    ours, runc = rt.both(["sh", "-c", "sh -c 'kill -9 $$'; exit $?"])
    assert ours.rc == runc.rc == 137
    # The user process is PID 1 itself, as under runc: its own SIGKILL is ignored.
    ours, runc = rt.both(["sh", "-c", "kill -9 $$; echo alive $$"])
    assert (ours.rc, ours.out) == (runc.rc, runc.out) == (0, "alive 1\n")


def test_rlimits_and_oom_score_and_sysctl_match_runc(rt: Runtimes) -> None:
    rlimits = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
               {"type": "RLIMIT_NPROC", "soft": 4000, "hard": 4000}]
    out = _same(rt, "ulimit -n; ulimit -Hn; ulimit -u; cat /proc/self/oom_score_adj;"
                    " cat /proc/sys/net/ipv4/ip_forward",
                **{"process.rlimits": rlimits, "process.oomScoreAdj": 200,
                   "linux.sysctl": {"net.ipv4.ip_forward": "1"}})
    assert out.split() == ["512", "1024", "4000", "200", "1"]


def test_masked_and_readonly_paths_match_runc(rt: Runtimes) -> None:
    out = _same(rt, "wc -c < /proc/keys; ls /sys/firmware | wc -l;"
                    " echo x 2>/dev/null > /proc/sys/kernel/hostname || echo ro-sys;"
                    " echo 1 2>/dev/null > /proc/sysrq-trigger || echo ro-sysrq;"
                    " touch /proc/keys 2>/dev/null; cat /proc/keys | wc -c")
    assert out.split() == ["0", "0", "ro-sys", "ro-sysrq", "0"]


def test_readonly_root_refuses_writes_but_tmpfs_mounts_work(rt: Runtimes) -> None:
    out = _same(rt, "touch /newfile 2>/dev/null || echo refused; touch /dev/shm/ok && echo shm",
                **{"root.readonly": True})
    assert out.split() == ["refused", "shm"]


def test_bind_mounts_with_options_match_runc(rt: Runtimes, tmp_path: object) -> None:
    src = os.path.join(str(tmp_path), "src")
    os.makedirs(src)
    with open(os.path.join(src, "hello"), "w") as f:
        f.write("hi\n")
    single = os.path.join(str(tmp_path), "single.txt")
    with open(single, "w") as f:
        f.write("one\n")
    extra = [
        {"destination": "/data/ro", "type": "bind", "source": src, "options": ["rbind", "ro"]},
        {"destination": "/data/rw", "type": "bind", "source": src,
         "options": ["rbind", "rw", "nosuid", "nodev"]},
        {"destination": "/etc/single.txt", "type": "bind", "source": single,
         "options": ["bind", "ro"]},
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "size=1m", "mode=700"]},
    ]
    from .bundle import config

    mounts = config(rt.rootfs, ["true"])["mounts"] + extra
    out = _same(rt, "cat /data/ro/hello /etc/single.txt;"
                    " touch /data/ro/x 2>/dev/null || echo ro-refused;"
                    " touch /data/rw/w$$ && echo rw-ok; rm -f /data/rw/w*;"
                    " grep -E ' /(data|etc|scratch)' /proc/self/mountinfo | cut -d' ' -f5,6",
                **{"mounts": mounts})
    assert out.splitlines()[:4] == ["hi", "one", "ro-refused", "rw-ok"]
    assert "/data/rw rw,nosuid,nodev,relatime" in out and "/etc/single.txt ro,relatime" in out


def test_mount_target_symlink_cannot_escape_rootfs(rt: Runtimes, tmp_path: object) -> None:
    rootfs = make_rootfs(str(tmp_path), "amd64")
    outside = os.path.join(str(tmp_path), "outside")
    os.makedirs(outside)
    os.symlink("../../../../../../../" + outside.lstrip("/"), os.path.join(rootfs, "escape"))
    bundle_mounts = [{"destination": "/escape/inner", "type": "tmpfs", "source": "tmpfs"}]
    from .bundle import config

    mounts = config(rootfs, ["true"])["mounts"] + bundle_mounts
    ours = rt.run("bkpy", rt.bundle(["sh", "-c", "touch /escape/inner/f && echo ok"],
                                    rootfs=rootfs, mounts=mounts))
    assert ours.rc == 0 and ours.out == "ok\n", ours
    # Resolved inside the rootfs (as runc does), never on the host path.
    assert os.listdir(outside) == []
    assert os.path.isdir(os.path.join(rootfs, outside.lstrip("/"), "inner"))


def test_zombies_are_reaped_by_init(rt: Runtimes) -> None:
    script = ("sh -c 'sleep 0.2 & exit 0'; sleep 0.8;"
              " cat /proc/[0-9]*/stat 2>/dev/null | awk '{print $3}' | grep -c Z")
    ours = rt.run("bkpy", rt.bundle(["sh", "-c", script]))
    assert ours.out.strip() == "0", ours


def test_user_process_is_pid1_as_under_runc(rt: Runtimes) -> None:
    ours, runc = rt.both(["sh", "-c", "echo $$ $PPID; cat /proc/1/cmdline"])
    assert ours.out == runc.out  # the shell runs its last command as an exec: cat is PID 1
    assert ours.out == "1 0\ncat\0/proc/1/cmdline\0"


def test_cgroup_limits_applied_and_removed(rt: Runtimes) -> None:
    resources = {"memory": {"limit": 64 * 1024 * 1024}, "pids": {"limit": 64},
                 "cpu": {"shares": 512}}
    path = f"/bkpy-runc-test/{os.getpid()}"
    out = _same(rt, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"
                    " /sys/fs/cgroup/cpu/cpu.shares",
                **{"linux.resources": resources, "linux.cgroupsPath": path})
    assert out.split() == [str(64 * 1024 * 1024), "64", "512"]
    for ctl in ("memory", "pids", "cpu", "devices", "freezer"):
        assert not os.path.exists(f"/sys/fs/cgroup/{ctl}{path}")
    for parent in glob.glob("/sys/fs/cgroup/*/bkpy-runc-test"):
        os.rmdir(parent)  # both runtimes leave the parent of the leaf, as runc does


def test_run_relays_sigterm_to_the_container(rt: Runtimes) -> None:
    script = "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.05; done"
    for runtime in ("bkpy", "runc"):
        bundle = rt.bundle(["sh", "-c", script])
        argv = [*rt.argv(runtime), "run", "--bundle", bundle, f"sig-{runtime}-{os.getpid()}"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        assert (proc.returncode, out) == (42, "got-term\n"), runtime


def test_arm64_rootfs_runs_under_binfmt(rt: Runtimes, tmp_path: object) -> None:
    rootfs = make_rootfs(str(tmp_path), "arm64")
    bundle = rt.bundle(["uname", "-m"], rootfs=rootfs)
    ours, runc = rt.run("bkpy", bundle), rt.run("runc", bundle)
    assert (ours.rc, ours.out) == (runc.rc, runc.out) == (0, "aarch64\n"), (ours, runc)


def test_no_pivot_gives_the_same_view(rt: Runtimes) -> None:
    bundle = rt.bundle(["sh", "-c", "ls /; hostname"])
    ours = rt.run("bkpy", bundle, "--no-pivot")
    runc = rt.run("runc", bundle, "--no-pivot")
    assert (ours.rc, ours.out) == (runc.rc, runc.out) and ours.rc == 0


def test_stdio_passes_through(rt: Runtimes) -> None:
    bundle = rt.bundle(["sh", "-c", "read line; echo got:$line; echo err >&2"])
    proc = subprocess.run([*rt.argv("bkpy"), "run", "--bundle", bundle, f"io{os.getpid()}"],
                          input="hello\n", capture_output=True, text=True, timeout=30,
                          check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "got:hello\n", "err\n")


def test_run_overhead_is_small(rt: Runtimes) -> None:
    """Loose guard against start-up regressions (the benchmark measures precisely)."""
    bundle = rt.bundle(["true"])
    times = []
    for _ in range(3):
        start = time.perf_counter()
        assert rt.run("bkpy", bundle).rc == 0
        times.append(time.perf_counter() - start)
    assert min(times) < 1.0


def test_missing_cwd_is_created_like_runc(rt: Runtimes) -> None:
    outs = {}
    for runtime in ("bkpy", "runc"):
        bundle = rt.bundle(["sh", "-c", "pwd; stat -c '%u:%g %a' ."],
                           **{"process.cwd": f"/work-{runtime}/sub",
                              "process.user": {"uid": 1000, "gid": 1000}})
        res = rt.run(runtime, bundle)
        assert res.rc == 0, res
        outs[runtime] = res.out.replace(f"/work-{runtime}/", "/work-X/")
    assert outs["bkpy"] == outs["runc"] == "/work-X/sub\n0:0 755\n"


def test_preserve_fds_passes_extra_descriptors(rt: Runtimes, tmp_path: object) -> None:
    bundle = rt.bundle(["sh", "-c", "echo to-fd3 >&3; ls /proc/self/fd | sort -n | tr '\\n' ' '"])
    for runtime in ("bkpy", "runc"):
        target = os.path.join(str(tmp_path), f"fd3-{runtime}")
        argv = " ".join([*rt.argv(runtime), "run", "--preserve-fds", "1", "--bundle", bundle,
                         f"fds-{runtime}-{os.getpid()}"])
        # A host shell puts a file at fd 3 and a stray descriptor at 7 (must not leak).
        proc = subprocess.run(["sh", "-c", f"exec 3>{target} 7</dev/null; {argv}"],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=30, check=False)
        assert proc.returncode == 0, (runtime, proc)
        # 4 is ls's own handle on /proc/self/fd; 7 must not have leaked in.
        assert proc.stdout.split() == ["0", "1", "2", "3", "4"], (runtime, proc)
        with open(target) as f:
            assert f.read() == "to-fd3\n"
