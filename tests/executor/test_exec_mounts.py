"""RUN --mount types through a real runtime: bind, cache, tmpfs, secret, ssh; mount stubs."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from buildkit_py.errors import BuildError
from buildkit_py.executor import (
    BindMount,
    CacheMount,
    ExecCancelledError,
    ExecRequest,
    Executor,
    SecretMount,
    SshMount,
    TmpfsMount,
)
from buildkit_py.executor.ssh_proxy import SocketForwarder
from tests.executor.conftest import Result, make_busybox_rootfs, run, snapshot_tree

Sh = Callable[..., Result]


@pytest.fixture
def src_dir(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "top.txt").write_text("top\n")
    (src / "sub/inner.txt").write_text("inner\n")
    return src


def test_bind_mount_is_read_only_by_default(sh: Sh, src_dir: Path) -> None:
    res = sh("cat /src/top.txt; touch /src/new && echo wrote || echo refused",
             mounts=[BindMount("/src", src_dir)])  # fmt: skip
    assert res.stdout == "top\nrefused\n"
    assert not (src_dir / "new").exists()


def test_bind_mount_selector_picks_a_subpath(sh: Sh, src_dir: Path) -> None:
    res = sh("ls /m", mounts=[BindMount("/m", src_dir, selector="sub")])
    assert res.stdout == "inner.txt\n"


def test_bind_mount_missing_selector_errors(sh: Sh, src_dir: Path) -> None:
    with pytest.raises(BuildError, match="'nope' in the mount source does not exist"):
        sh("true", mounts=[BindMount("/m", src_dir, selector="nope")])


def test_rw_bind_writes_go_to_the_callers_throwaway_dir_not_the_rootfs(
    sh: Sh, src_dir: Path, rootfs: Path
) -> None:
    res = sh("echo hi > /src/new", mounts=[BindMount("/src", src_dir, readonly=False)])
    assert res.code == 0, res.stderr
    assert (src_dir / "new").read_text() == "hi\n"
    assert not (rootfs / "src").exists()


def test_relative_mount_target_is_joined_to_the_working_dir(sh: Sh, src_dir: Path) -> None:
    res = sh("cat /work/in/top.txt", cwd="/work", mounts=[BindMount("in", src_dir)])
    assert res.stdout == "top\n"


def test_cache_mount_persists_across_runs_and_stays_out_of_the_rootfs(
    sh: Sh, rootfs: Path
) -> None:
    mount = CacheMount("/root/.cache")
    assert sh("echo one >> /root/.cache/log", mounts=[mount]).code == 0
    res = sh("echo two >> /root/.cache/log; cat /root/.cache/log", mounts=[mount])
    assert res.stdout == "one\ntwo\n"
    assert not (rootfs / "root/.cache").exists()
    # A different id is a different cache.
    assert sh("ls -A /root/.cache", mounts=[CacheMount("/root/.cache", id="x")]).stdout == ""


def test_cache_mount_applies_uid_gid_mode_on_creation(sh: Sh) -> None:
    mount = CacheMount("/c", id="owned", uid=1000, gid=50, mode=0o700)
    res = sh("stat -c '%u %g %a' /c; touch /c/f && echo ok", mounts=[mount], user="alice")
    assert res.stdout == "1000 50 700\nok\n"


def test_cache_mount_is_seeded_from_the_given_source(sh: Sh, src_dir: Path) -> None:
    mount = CacheMount("/c", id="seeded", seed=src_dir)
    assert sh("cat /c/top.txt; echo more > /c/top.txt", mounts=[mount]).stdout == "top\n"
    assert sh("cat /c/top.txt", mounts=[mount]).stdout == "more\n"
    assert (src_dir / "top.txt").read_text() == "top\n"


def test_seeded_cache_mount_root_takes_the_seed_root_owner_and_mode(
        sh: Sh, tmp_path: Path) -> None:
    # `RUN --mount=type=cache,uid=,gid=,mode=` seeds the cache with such a directory.
    seed = tmp_path / "seed"
    seed.mkdir(mode=0o750)
    os.chown(seed, 1000, 50)
    mount = CacheMount("/c", id="seed-owned", seed=seed)
    assert sh("stat -c '%u %g %a' /c", mounts=[mount]).stdout == "1000 50 750\n"


def test_one_step_mounting_a_cache_twice_shares_one_instance(sh: Sh) -> None:
    # BuildKit: the same cache id in one step is one instance, whatever the sharing mode
    # (a second locked lease would wait for the first forever).
    mounts = [CacheMount("/a", id="twice", sharing="locked"),
              CacheMount("/b", id="twice", sharing="locked")]
    assert sh("echo x > /a/f && cat /b/f", mounts=mounts).stdout == "x\n"


def _two_rootfs(rootfs: Path) -> list[Path]:
    # Concurrent execs never share a rootfs (each gets its own snapshot): the stub cleanup of
    # one would remove a mount point the other still uses.
    return [rootfs, make_busybox_rootfs(rootfs.parent / "rootfs2")]


def _concurrent(executor: Executor, reqs: list[ExecRequest]) -> list[Result]:
    results: list[Result | None] = [None] * len(reqs)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            results[i] = run(executor, reqs[i])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(reqs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return [r for r in results if r is not None]


def test_locked_cache_mount_serialises_concurrent_runs(executor: Executor, rootfs: Path) -> None:
    script = "echo start$N >> /c/log; sleep 0.4; echo end$N >> /c/log"
    mount = CacheMount("/c", id="lk", sharing="locked")
    reqs = [ExecRequest(rootfs=r, args=["/bin/sh", "-c", script], env=[f"N={i}"],
                        mounts=[mount]) for i, r in enumerate(_two_rootfs(rootfs))]  # fmt: skip
    assert [r.code for r in _concurrent(executor, reqs)] == [0, 0]
    log = run(executor, ExecRequest(rootfs=rootfs, args=["cat", "/c/log"], mounts=[mount]))
    lines = log.stdout.split()
    assert len(lines) == 4
    assert lines[0][5:] == lines[1][3:] and lines[2][5:] == lines[3][3:], lines


def test_shared_cache_mount_lets_concurrent_runs_overlap(executor: Executor, rootfs: Path) -> None:
    script = "echo start >> /c/log; sleep 0.4; echo end >> /c/log"
    mount = CacheMount("/c", id="sh", sharing="shared")
    reqs = [ExecRequest(rootfs=r, args=["/bin/sh", "-c", script], mounts=[mount])
            for r in _two_rootfs(rootfs)]
    _concurrent(executor, reqs)
    log = run(executor, ExecRequest(rootfs=rootfs, args=["cat", "/c/log"], mounts=[mount]))
    assert log.stdout.split() == ["start", "start", "end", "end"]


def test_private_cache_mount_gives_concurrent_runs_separate_instances(
    executor: Executor, rootfs: Path
) -> None:
    script = "touch /c/$N; sleep 0.4; ls /c"
    mount = CacheMount("/c", id="pv", sharing="private")
    reqs = [ExecRequest(rootfs=r, args=["/bin/sh", "-c", script], env=[f"N=f{i}"],
                        mounts=[mount]) for i, r in enumerate(_two_rootfs(rootfs))]  # fmt: skip
    outs = sorted(r.stdout.split() for r in _concurrent(executor, reqs))
    assert outs == [["f0"], ["f1"]]


def test_tmpfs_mount_has_size_and_leaves_nothing_behind(sh: Sh, rootfs: Path) -> None:
    res = sh("grep ' /scratch ' /proc/mounts; echo hi > /scratch/f; cat /scratch/f",
             mounts=[TmpfsMount("/scratch", size=4 * 1024 * 1024)])  # fmt: skip
    mount_line, content = res.stdout.splitlines()
    assert mount_line.split()[2] == "tmpfs" and "size=4096k" in mount_line
    assert content == "hi"
    assert not (rootfs / "scratch").exists()


def test_secret_file_mount_has_mode_owner_and_never_lands_in_the_rootfs(
    sh: Sh, rootfs: Path, executor: Executor
) -> None:
    store = {"tok": b"s3cr3t"}.get
    res = sh("cat /run/secrets/tok; echo; stat -c '%a %u %g' /run/secrets/tok; "
             "cat /etc/key; echo; stat -c '%a %u %g' /etc/key",
             secrets=store, user="alice",
             mounts=[SecretMount("tok", uid=1000), SecretMount("tok", target="/etc/key",
                                                              mode=0o440, gid=50)])  # fmt: skip
    assert res.stdout.splitlines() == ["s3cr3t", "400 1000 0", "s3cr3t", "440 0 50"]
    assert not (rootfs / "run").exists()
    assert not (rootfs / "etc/key").exists()
    assert os.listdir(executor.bundle_root) == []  # the private secret copy is gone too


def test_secret_env_mount_sets_the_variable_without_a_file(sh: Sh) -> None:
    res = sh('echo "$TOKEN"; ls /run/secrets 2>&1 || true', secrets={"tok": b"v1"}.get,
             mounts=[SecretMount("tok", env="TOKEN")])  # fmt: skip
    assert res.stdout.splitlines()[0] == "v1"
    assert "No such file" in res.stdout


def test_missing_required_secret_errors_naming_the_id(sh: Sh) -> None:
    with pytest.raises(BuildError, match="secret mysecret: not found"):
        sh("true", secrets={}.get, mounts=[SecretMount("mysecret", required=True)])


def test_missing_optional_secret_is_skipped(sh: Sh) -> None:
    res = sh("test -e /run/secrets/opt && echo yes || echo no",
             secrets={}.get, mounts=[SecretMount("opt")])  # fmt: skip
    assert res.stdout == "no\n"


@pytest.fixture
def agent_socket(tmp_path: Path) -> Iterator[Path]:
    """A unix socket server standing in for an ssh agent: echoes what it reads."""
    path = Path("/tmp") / f"bkpy-agent-{os.getpid()}-{time.monotonic_ns()}.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(4096):
                    conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    yield path
    server.close()
    path.unlink()


def test_ssh_mount_exposes_a_socket_and_sets_ssh_auth_sock(sh: Sh, agent_socket: Path) -> None:
    res = sh('echo "$SSH_AUTH_SOCK"; test -S "$SSH_AUTH_SOCK" && stat -c "%a %u" "$SSH_AUTH_SOCK"',
             mounts=[SshMount(socket=agent_socket)])  # fmt: skip
    assert res.stdout.splitlines() == ["/run/buildkit/ssh_agent.0", "600 0"]


def test_ssh_mount_with_explicit_target_and_owner(sh: Sh, agent_socket: Path) -> None:
    res = sh('echo "${SSH_AUTH_SOCK:-unset}"; stat -c "%a %u" /agent.sock',
             mounts=[SshMount(socket=agent_socket, target="/agent.sock", uid=1000)])  # fmt: skip
    assert res.stdout.splitlines() == ["unset", "600 1000"]


def test_missing_required_ssh_agent_errors(sh: Sh) -> None:
    with pytest.raises(BuildError, match='no SSH key "default" forwarded'):
        sh("true", mounts=[SshMount(required=True)])


def test_socket_forwarder_relays_to_the_upstream_agent(tmp_path: Path, agent_socket: Path) -> None:
    listen = tmp_path / "fwd.sock"
    fwd = SocketForwarder(listen, agent_socket, uid=0, gid=0, mode=0o600)
    try:
        for payload in (b"hello", b"x" * 200000):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
                c.connect(str(listen))
                c.sendall(payload)
                got = b""
                while len(got) < len(payload):
                    got += c.recv(65536)
                assert got == payload
    finally:
        fwd.close()
    assert not listen.exists()


def test_mount_stubs_are_removed_and_rootfs_is_unchanged(
    sh: Sh, rootfs: Path, src_dir: Path, agent_socket: Path
) -> None:
    # Note: /etc has no hosts/resolv.conf, /run and /mnt do not exist.
    before = snapshot_tree(rootfs)
    res = sh("true", secrets={"s": b"x"}.get, mounts=[
        BindMount("/mnt/a/b", src_dir), BindMount("/etc/file", src_dir / "top.txt"),
        CacheMount("/var/cache/x"), TmpfsMount("/tmpfs"), SecretMount("s"),
        SshMount(socket=agent_socket),
    ])  # fmt: skip
    assert res.code == 0, res.stderr
    after = snapshot_tree(rootfs)
    # Like BuildKit's stub cleaner, the parents of removed stubs (/ and /etc here) keep the
    # mtime the stubs' creation gave them; everything else is as before.
    assert after.keys() == before.keys()
    assert {k: v for k, v in after.items() if k not in (".", "etc")} == {
        k: v for k, v in before.items() if k not in (".", "etc")}
    assert {k: after[k][:2] for k in (".", "etc")} == {k: before[k][:2] for k in (".", "etc")}


def test_runtime_mount_points_stay_as_in_buildkit(sh: Sh, rootfs: Path) -> None:
    # BuildKit cleans up the stubs of the step's own mounts and of /etc/hosts and
    # /etc/resolv.conf only: /proc and /sys made for the runtime's mounts stay (0755), and
    # a missing /dev made as the parent of a mount point inside it goes again.
    for name in ("proc", "sys", "dev"):
        os.rmdir(rootfs / name)
    res = sh("true", mounts=[TmpfsMount("/dev/extra"), TmpfsMount("/a/b/c")])
    assert res.code == 0, res.stderr
    assert {n: oct(os.stat(rootfs / n).st_mode & 0o7777) for n in ("proc", "sys")} == {
        "proc": "0o755", "sys": "0o755"}
    assert not (rootfs / "dev").exists() and not (rootfs / "a").exists()


def test_non_empty_stub_is_kept(sh: Sh, rootfs: Path, src_dir: Path) -> None:
    # The process wrote next to the mount point: /mnt stays (with its content).
    res = sh("echo x > /mnt/keep", mounts=[BindMount("/mnt/a", src_dir)])
    assert res.code == 0, res.stderr
    assert sorted(os.listdir(rootfs / "mnt")) == ["keep"]


def test_cancel_while_waiting_for_a_locked_cache_mount(executor: Executor, rootfs: Path) -> None:
    held = executor.cache_mounts.acquire("busy", sharing="locked")
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    try:
        with pytest.raises(ExecCancelledError, match="locked cache mount 'busy'"):
            run(executor, ExecRequest(rootfs=rootfs, args=["touch", "/ran"],
                                      mounts=[CacheMount("/c", id="busy", sharing="locked")]),
                cancel=cancel)  # fmt: skip
    finally:
        held.release()
    assert not (rootfs / "ran").exists()
    assert os.listdir(executor.bundle_root) == []
