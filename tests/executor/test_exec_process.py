"""A RUN process through a real runtime: output, exit codes, env, cwd, user, hostname."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from buildkit_py.errors import BuildError, UsageError
from buildkit_py.executor import ExecRequest, Executor, RuntimeStartError, resolve_runtime
from tests.executor.conftest import Result, run

Sh = Callable[..., Result]


def test_stdout_and_stderr_are_streamed_separately_and_exit_code_returned(sh: Sh) -> None:
    res = sh("echo out1; echo err1 >&2; echo out2; exit 7")
    assert res.code == 7
    assert res.stdout == "out1\nout2\n"
    assert res.stderr == "err1\n"


def test_output_chunks_arrive_while_the_process_still_runs(
    executor: Executor, rootfs: Path
) -> None:
    # The marker file is created only after the first line has reached us: the second
    # line is printed after the process sees it, so buffering the whole output would hang.
    marker = rootfs / "tmp/go"
    seen: list[bytes] = []

    def on_stdout(data: bytes) -> None:
        seen.append(data)
        if b"first" in data:
            marker.touch()

    script = "echo first; i=0; while [ ! -e /tmp/go ] && [ $i -lt 100 ]; do sleep 0.05; " \
             "i=$((i+1)); done; [ -e /tmp/go ] && echo second"
    code = executor.run(
        ExecRequest(rootfs=rootfs, args=["/bin/sh", "-c", script]),
        stdout=on_stdout, stderr=lambda b: None,
    )  # fmt: skip
    assert code == 0
    assert b"".join(seen) == b"first\nsecond\n"


def test_env_is_passed_and_default_path_added_when_missing(sh: Sh) -> None:
    res = sh('echo "$FOO|$PATH"', env=["FOO=bar baz"])
    assert res.stdout == "bar baz|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    assert sh('echo "$PATH"', env=["PATH=/bin"]).stdout == "/bin\n"


def test_missing_working_directory_is_created_owned_by_the_user(sh: Sh, rootfs: Path) -> None:
    res = sh("pwd; touch here", cwd="/srv/app/data", user="alice")
    assert res.code == 0, res.stderr
    assert res.stdout == "/srv/app/data\n"
    for rel in ("srv", "srv/app", "srv/app/data"):
        st = os.stat(rootfs / rel)
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1000, 1000, 0o755)
    assert (rootfs / "srv/app/data/here").stat().st_uid == 1000


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("", "uid=0(root) gid=0(root) groups=0(root),10(wheel)"),
        ("alice", "uid=1000(alice) gid=1000(alice) groups=50(staff),1000(alice)"),
        ("1000", "uid=1000(alice) gid=1000(alice) groups=50(staff),1000(alice)"),
        ("1234", "uid=1234 gid=0(root) groups=0(root)"),
        ("1234:1234", "uid=1234 gid=1234 groups=1234"),
        ("alice:staff", "uid=1000(alice) gid=50(staff) groups=50(staff)"),
        ("daemon", "uid=1(daemon) gid=1(daemon) groups=1(daemon)"),
        ("root:root", "uid=0(root) gid=0(root) groups=0(root)"),
    ],
)
def test_user_resolution_matches_buildkit(sh: Sh, user: str, expected: str) -> None:
    res = sh("id", user=user)
    assert res.code == 0, res.stderr
    assert res.stdout.strip() == expected


def test_unknown_user_name_fails_with_buildkit_message(sh: Sh) -> None:
    with pytest.raises(BuildError, match="unable to find user bob: no matching entries"):
        sh("true", user="bob")
    with pytest.raises(BuildError, match="unable to find group devs: no matching entries"):
        sh("true", user="alice:devs")


def test_hostname_defaults_to_buildkitsandbox_and_is_configurable(sh: Sh) -> None:
    assert sh("hostname").stdout == "buildkitsandbox\n"
    assert sh("hostname", hostname="box1").stdout == "box1\n"


def test_etc_hosts_is_generated_read_only(sh: Sh) -> None:
    res = sh("cat /etc/hosts; echo x >> /etc/hosts || echo refused",
             hostname="h1", extra_hosts=[("db", "10.1.2.3")])  # fmt: skip
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["127.0.0.1", "localhost", "h1"]
    assert lines[1].split() == ["::1", "localhost", "ip6-localhost", "ip6-loopback"]
    assert lines[2].split() == ["10.1.2.3", "db"]
    assert lines[-1] == "refused"


def test_resolv_conf_drops_loopback_nameservers_in_own_netns(sh: Sh) -> None:
    host = Path("/etc/resolv.conf").read_text()
    inside = sh("cat /etc/resolv.conf").stdout
    ns = [ln.split()[1] for ln in inside.splitlines() if ln.startswith("nameserver")]
    assert ns and not any(n.startswith("127.") or n == "::1" for n in ns)
    assert sh("cat /etc/resolv.conf", network="host").stdout == host


def test_missing_executable_raises_runtime_start_error(executor: Executor, rootfs: Path) -> None:
    with pytest.raises(RuntimeStartError, match="/bin/nope"):
        run(executor, ExecRequest(rootfs=rootfs, args=["/bin/nope"]))
    assert os.listdir(executor.bundle_root) == []


def test_bundle_and_container_state_are_removed_after_run(sh: Sh, executor: Executor) -> None:
    assert sh("true").code == 0
    assert sh("exit 3").code == 3
    assert os.listdir(executor.bundle_root) == []
    assert [p for p in os.listdir(executor.state_dir / "runtime") if p.startswith("bkpy-")] == []


def test_default_bundle_root_is_a_private_tmpfs_dir(runtime: str, tmp_path: Path) -> None:
    ex = Executor(runtime, tmp_path / "state")
    ex.close()
    assert ex.bundle_root.parent == Path("/dev/shm")
    st = ex.bundle_root.lstat()
    assert st.st_mode & 0o077 == 0 and st.st_uid == os.geteuid()


def test_runtime_is_chosen_by_name_or_path(tmp_path: Path) -> None:
    assert resolve_runtime("/usr/sbin/runc") == Path("/usr/sbin/runc")
    assert resolve_runtime("runc").name == "runc"
    with pytest.raises(UsageError, match="not found on PATH"):
        Executor("no-such-runtime", tmp_path)
    with pytest.raises(UsageError, match="not an executable"):
        resolve_runtime(str(tmp_path / "nothing"))
