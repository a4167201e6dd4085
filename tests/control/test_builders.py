"""``bkpy builder``: records in the client config, selection, the daemon driver, nodes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from buildkit_py.api.workers import WorkerInfo
from buildkit_py.client.multinode import NodeTarget, route_platforms
from buildkit_py.client.remote import RemoteClient
from tests.control.conftest import MakeDaemon, client_env, run_bkpy

SCRATCH = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY note.txt /note.txt\n"


def _scratch_context(path: Path) -> Path:
    path.mkdir()
    (path / "Dockerfile").write_text(SCRATCH)
    (path / "busybox").write_bytes(Path("/var/cache/bkpy-test/busybox-amd64").read_bytes())
    (path / "note.txt").write_text("note\n")
    return path


def test_builder_create_ls_use_rm(tmp_path: Path, make_daemon: MakeDaemon) -> None:
    daemon = make_daemon(busybox=False)
    env = client_env(tmp_path)
    assert run_bkpy("builder", "create", "--name", "far", daemon.endpoint, env=env).out \
        .strip() == "far"
    listing = run_bkpy("builder", "ls", env=env).out
    assert "default *" in listing
    far = next(line for line in listing.splitlines() if "\\_ far0" in line)
    assert daemon.endpoint in far and "running" in far
    run_bkpy("builder", "use", "far", env=env)
    assert "far *" in run_bkpy("builder", "ls", env=env).out
    assert (tmp_path / "client" / "builders" / "far.json").is_file()
    inspect = run_bkpy("builder", "inspect", env=env).out
    assert "Driver:        remote" in inspect and "linux/amd64" in inspect
    dup = run_bkpy("builder", "create", "--name", "far", daemon.endpoint, env=env, check=False)
    assert dup.code == 2 and "already exists" in dup.err
    run_bkpy("builder", "rm", "far", env=env)
    listing = run_bkpy("builder", "ls", env=env).out
    assert "far" not in listing and "default *" in listing
    ctx = _scratch_context(tmp_path / "ctx")
    gone = run_bkpy("build", "--builder", "far", str(ctx), env=env, check=False)
    assert gone.code == 2 and "no builder 'far'" in gone.err
    assert run_bkpy("builder", "rm", "default", env=env, check=False).code == 2


def test_bkpy_builder_env_selects_the_remote_builder(tmp_path: Path,
                                                     make_daemon: MakeDaemon) -> None:
    env = client_env(tmp_path)
    run_bkpy("builder", "create", "--name", "far", make_daemon(busybox=False).endpoint, env=env)
    ctx = _scratch_context(tmp_path / "ctx")
    res = run_bkpy("build", "--progress", "plain", str(ctx), env={**env, "BKPY_BUILDER": "far"})
    assert '#0 building with "far" instance using remote driver' in res.err
    res = run_bkpy("build", "--progress", "plain", str(ctx), env=env)
    assert '#0 building with "default" instance using embedded driver' in res.err


def test_daemon_driver_starts_bkpyd_on_demand(tmp_path: Path) -> None:
    env = client_env(tmp_path)
    root = tmp_path / "loc-root"
    run_bkpy("builder", "create", "--name", "loc", "--driver", "daemon",
             "--driver-opt", f"root={root}", "--use", env=env)
    assert "inactive" in run_bkpy("builder", "ls", env=env).out
    ctx = _scratch_context(tmp_path / "ctx")
    try:
        run_bkpy("build", "--progress", "quiet", "-o", f"type=local,dest={tmp_path}/out",
                 str(ctx), env=env)
        assert (tmp_path / "out" / "note.txt").read_text() == "note\n"
        assert (root / "control" / "contexts").is_dir()  # built by the daemon, in its root
        loc = next(line for line in run_bkpy("builder", "ls", env=env).out.splitlines()
                   if "\\_ loc0" in line)
        assert "running" in loc
        run_bkpy("builder", "stop", "loc", env=env)
        assert "inactive" in run_bkpy("builder", "ls", env=env).out
        assert "Status:        running" in run_bkpy("builder", "inspect", "--bootstrap",
                                                     env=env).out
    finally:
        run_bkpy("builder", "rm", "loc", env=env)
    assert not root.exists()
    assert "loc" not in run_bkpy("builder", "ls", env=env).out


def _node(name: str, platforms: list[str]) -> NodeTarget:
    return NodeTarget(name, RemoteClient("unix:///nonexistent"), platforms)


def test_platforms_route_to_configured_then_native_then_emulated_nodes() -> None:
    nodes = [_node("a", []), _node("b", ["linux/arm64"])]
    asked: list[int] = []

    def workers(i: int) -> WorkerInfo:
        asked.append(i)
        return [WorkerInfo("a", ["linux/amd64", "linux/arm64"], ["linux/arm64"]),
                WorkerInfo("b", ["linux/arm64", "linux/riscv64"], ["linux/riscv64"])][i]

    # configured platforms place everything: no worker is asked
    assert route_platforms(["linux/arm64"], nodes, workers) == {1: ["linux/arm64"]}
    assert asked == []
    # amd64 runs natively on a; arm64 is configured on b; riscv64 only emulated on b;
    # s390x runs nowhere and goes to the first node
    got = route_platforms(["linux/amd64", "linux/arm64", "linux/riscv64", "linux/s390x"],
                          nodes, workers)
    assert got == {0: ["linux/amd64", "linux/s390x"], 1: ["linux/arm64", "linux/riscv64"]}
    # native beats emulated: arm64 is emulated on a but native on c
    nodes3 = [_node("a", []), _node("c", [])]

    def workers3(i: int) -> WorkerInfo:
        return [WorkerInfo("a", ["linux/amd64", "linux/arm64"], ["linux/arm64"]),
                WorkerInfo("c", ["linux/arm64"], [])][i]

    assert route_platforms(["linux/arm64", "linux/amd64"], nodes3, workers3) == {
        1: ["linux/arm64"], 0: ["linux/amd64"]}
    assert route_platforms([], nodes3, workers3) == {0: []}


def test_two_node_builder_builds_each_platform_on_its_node(
        tmp_path: Path, make_daemon: MakeDaemon) -> None:
    one = make_daemon("one", busybox=False)
    two = make_daemon("two", busybox=False)
    env = client_env(tmp_path)
    run_bkpy("builder", "create", "--name", "pair", "--platform", "linux/amd64",
             one.endpoint, env=env)
    run_bkpy("builder", "create", "--name", "pair", "--append", "--platform", "linux/arm64",
             two.endpoint, env=env)
    ctx = _scratch_context(tmp_path / "ctx")
    res = run_bkpy("build", "--builder", "pair", "--progress", "plain",
                   "--platform", "linux/amd64,linux/arm64",
                   "-o", f"type=local,dest={tmp_path}/out",
                   "--metadata-file", str(tmp_path / "md.json"), str(ctx), env=env)
    assert (tmp_path / "out" / "linux_amd64" / "note.txt").read_text() == "note\n"
    assert (tmp_path / "out" / "linux_arm64" / "note.txt").read_text() == "note\n"
    assert "[pair0] [internal] load build context" in res.err
    assert "[pair1] [internal] load build context" in res.err
    import json

    nodes = json.loads((tmp_path / "md.json").read_text())["nodes"]
    assert [(n["name"], n["platforms"]) for n in nodes] == [("pair0", ["linux/amd64"]),
                                                           ("pair1", ["linux/arm64"])]
    # an OCI archive across the two nodes holds one index with both platforms
    run_bkpy("build", "--builder", "pair", "--platform", "linux/amd64,linux/arm64",
             "-o", f"type=oci,dest={tmp_path}/x.tar", str(ctx), env=env)
    import subprocess

    raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci-archive:{tmp_path}/x.tar"],
                         capture_output=True, text=True, check=True).stdout
    arches = sorted(m["platform"]["architecture"] for m in json.loads(raw)["manifests"])
    assert arches == ["amd64", "arm64"]


def test_embedded_build_path_does_not_import_grpc(tmp_path: Path) -> None:
    ctx = _scratch_context(tmp_path / "ctx")
    code = ("import sys\nfrom buildkit_py.cli.main import main\n"
            f"main(['build', '--progress', 'quiet', {str(ctx)!r}])\n"
            "print('grpc' in sys.modules)\n")
    env = client_env(tmp_path)
    import os

    p = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env},
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "False"
