"""Builds through bkpyd: same image as embedded, incremental context, ignore rules,
secrets, outputs and errors carried over the wire."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.control.conftest import Daemon, client_env, import_busybox, run_bkpy

DOCKERFILE = """\
FROM busybox
COPY . /src
RUN cat /src/a.txt > /copy.txt && echo built > /built.txt
"""


def _context(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        p = path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return path


def _transfers(daemon: Daemon, since: int) -> list[tuple[int, int]]:
    """(files, raw bytes) of every context sync the daemon logged after offset ``since``
    (its own accounting: the progress shows BuildKit's figures)."""
    return [(int(m.group(1)), int(m.group(2))) for m in re.finditer(
        r"transferred (\d+) files \((\d+) bytes", daemon.log.read_text()[since:])]


def test_remote_build_gives_the_same_image_digest_as_embedded(
        tmp_path: Path, shared_daemon: Daemon, busybox_layout: Path) -> None:
    daemon = shared_daemon
    env = client_env(tmp_path, daemon)
    import_busybox(Path(env["BKPY_ROOT"]), busybox_layout)
    ctx = _context(tmp_path / "ctx", {"Dockerfile": DOCKERFILE, "a.txt": "hello\n",
                                      "sub/b.txt": "b\n"})
    common = ["--build-arg", "SOURCE_DATE_EPOCH=1700000000",
              "--output", "type=image,name=same:1,rewrite-timestamp=true", str(ctx)]
    run_bkpy("build", "--progress", "plain", "--builder", "default",
             "--metadata-file", str(tmp_path / "embedded.json"), *common, env=env)
    run_bkpy("build", "--progress", "plain", "--metadata-file", str(tmp_path / "remote.json"),
             *common, env=env)
    embedded = json.loads((tmp_path / "embedded.json").read_text())
    remote = json.loads((tmp_path / "remote.json").read_text())
    assert remote["containerimage.digest"] == embedded["containerimage.digest"]
    assert remote["containerimage.config.digest"] == embedded["containerimage.config.digest"]
    # type=image lands in the daemon's image store, not the client's
    images = run_bkpy("images", env={"BKPY_ROOT": str(daemon.root)}).out
    assert "same:1" in images


def test_second_build_after_one_change_sends_only_that_file(
        tmp_path: Path, shared_daemon: Daemon) -> None:
    env = client_env(tmp_path, shared_daemon)
    files = {"Dockerfile": DOCKERFILE, "a.txt": "hello\n"}
    files.update({f"data/f{i}.txt": f"file {i}\n" * 200 for i in range(20)})
    ctx = _context(tmp_path / "ctx", files)
    mark = len(shared_daemon.log.read_text())
    run_bkpy("build", "--progress", "plain", str(ctx), env=env)
    assert _transfers(shared_daemon, mark) == [(22, sum(len(t) for t in files.values()))]
    (ctx / "a.txt").write_text("changed\n")
    mark = len(shared_daemon.log.read_text())
    run_bkpy("build", "--progress", "plain", "-o", f"type=local,dest={tmp_path}/out",
             str(ctx), env=env)
    assert _transfers(shared_daemon, mark) == [(1, len("changed\n"))]
    assert (tmp_path / "out" / "copy.txt").read_text() == "changed\n"
    # a touched but unchanged file is hashed, not sent
    (ctx / "data" / "f3.txt").touch()
    mark = len(shared_daemon.log.read_text())
    run_bkpy("build", "--progress", "plain", str(ctx), env=env)
    assert _transfers(shared_daemon, mark) == [(0, 0)]


def test_ignored_files_never_reach_the_daemon(tmp_path: Path, shared_daemon: Daemon) -> None:
    daemon = shared_daemon
    env = client_env(tmp_path, daemon)
    marker = "TOP-SECRET-MARKER-7f3a"
    ctx = _context(tmp_path / "ctx", {
        "Dockerfile": DOCKERFILE, "a.txt": "hello\n", ".dockerignore": "*.key\nprivate/\n",
        "id.key": marker, "private/creds.txt": marker})
    run_bkpy("build", "--progress", "plain", "-o", f"type=local,dest={tmp_path}/out", str(ctx),
             env=env)
    out = tmp_path / "out" / "src"
    assert sorted(p.name for p in out.iterdir()) == [".dockerignore", "Dockerfile", "a.txt"]
    leaked = [p for p in daemon.root.rglob("*")
              if p.is_file() and not p.is_symlink() and marker.encode() in p.read_bytes()]
    assert leaked == []


def test_named_context_is_filtered_by_its_own_dockerignore(
        tmp_path: Path, shared_daemon: Daemon) -> None:
    env = client_env(tmp_path, shared_daemon)
    marker = "NAMED-CONTEXT-SECRET-2c9e"
    ctx = _context(tmp_path / "ctx", {"Dockerfile": "FROM busybox\nCOPY --from=extra . /x\n"})
    extra = _context(tmp_path / "extra", {".dockerignore": "*.key\n", "keep.txt": "k\n",
                                          "id.key": marker})
    run_bkpy("build", "--progress", "quiet", "--build-context", f"extra={extra}",
             "-o", f"type=local,dest={tmp_path}/out", str(ctx), env=env)
    assert sorted(p.name for p in (tmp_path / "out" / "x").iterdir()) == [
        ".dockerignore", "keep.txt"]
    leaked = [p for p in shared_daemon.root.rglob("*")
              if p.is_file() and not p.is_symlink() and marker.encode() in p.read_bytes()]
    assert leaked == []


def test_outputs_are_written_on_the_client(tmp_path: Path, shared_daemon: Daemon) -> None:
    env = client_env(tmp_path, shared_daemon)
    ctx = _context(tmp_path / "ctx", {
        "Dockerfile": "FROM busybox\nCOPY a.txt /a.txt\nRUN chmod 4750 /a.txt && "
                      "ln -s a.txt /link\n",
        "a.txt": "payload\n"})
    run_bkpy("build", "--progress", "quiet", str(ctx),
             "-o", f"type=local,dest={tmp_path}/local",
             "-o", f"type=oci,dest={tmp_path}/image.tar",
             "--iidfile", str(tmp_path / "iid"), env=env)
    local = tmp_path / "local"
    assert (local / "a.txt").read_text() == "payload\n"
    assert (local / "a.txt").stat().st_mode & 0o7777 == 0o4750
    assert (local / "link").readlink() == Path("a.txt")
    assert (local / "bin" / "busybox").stat().st_size > 100_000
    import tarfile

    with tarfile.open(tmp_path / "image.tar") as tf:
        assert "index.json" in tf.getnames()
    assert (tmp_path / "iid").read_text().startswith("sha256:")


def test_secrets_are_fetched_on_demand_and_not_kept(tmp_path: Path,
                                                    shared_daemon: Daemon) -> None:
    daemon = shared_daemon
    env = client_env(tmp_path, daemon)
    secret = "s3cr3t-value-91c2"
    (tmp_path / "token").write_text(secret)
    ctx = _context(tmp_path / "ctx", {"Dockerfile": (
        "FROM busybox\nRUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /len\n")})
    run_bkpy("build", "--progress", "plain", "--secret", f"id=tok,src={tmp_path}/token",
             "-o", f"type=local,dest={tmp_path}/out", str(ctx), env=env)
    assert (tmp_path / "out" / "len").read_text().strip() == str(len(secret))
    leaked = [p for p in daemon.root.rglob("*")
              if p.is_file() and not p.is_symlink() and secret.encode() in p.read_bytes()]
    assert leaked == []


def test_failed_step_keeps_location_snippet_and_log_tail(
        tmp_path: Path, shared_daemon: Daemon, busybox_layout: Path) -> None:
    env = client_env(tmp_path, shared_daemon)
    import_busybox(tmp_path / "emb", busybox_layout)
    ctx = _context(tmp_path / "ctx", {"Dockerfile": (
        "FROM busybox\nRUN echo first-line\nRUN echo boom-output && exit 3\n")})
    remote = run_bkpy("build", "--progress", "plain", str(ctx), env=env, check=False)
    embedded = run_bkpy("build", "--progress", "plain", "--builder", "default", str(ctx),
                        env={**env, "BKPY_ROOT": str(tmp_path / "emb")}, check=False)
    assert remote.code == 1
    assert "Traceback" not in remote.err
    tail = remote.err[remote.err.index("------"):]
    assert "boom-output" in tail
    assert "   3 | >>> RUN echo boom-output && exit 3" in tail
    assert "exit code: 3" in tail
    # the rendered error block is the embedded one, word for word, but for the remote
    # driver's warning about a build without output, which buildx prints after the block
    assert embedded.code == 1
    warning = next(line for line in tail.splitlines() if line.startswith("WARNING: No output"))
    assert tail.index(warning) > tail.index(" > [3/3] RUN echo boom-output && exit 3:")
    assert tail.replace(warning + "\n", "") == embedded.err[embedded.err.index("------"):]


def test_dockerfile_error_exits_1_over_the_wire(tmp_path: Path, shared_daemon: Daemon) -> None:
    env = client_env(tmp_path, shared_daemon)
    ctx = _context(tmp_path / "ctx", {"Dockerfile": "FROM busybox\nFROBNICATE now\n"})
    res = run_bkpy("build", "--progress", "quiet", str(ctx), env=env, check=False)
    assert res.code == 1
    assert "FROBNICATE" in res.err
    assert "Traceback" not in res.err


def test_entitlements_travel_to_the_daemon(tmp_path: Path, shared_daemon: Daemon) -> None:
    env = client_env(tmp_path, shared_daemon)
    ctx = _context(tmp_path / "ctx", {"Dockerfile": "FROM busybox\nRUN --security=insecure true\n"})
    denied = run_bkpy("build", "--progress", "quiet", str(ctx), env=env, check=False)
    assert denied.code == 1
    assert "failed to load LLB: security.insecure is not allowed" in denied.err
    run_bkpy("build", "--progress", "quiet", "--allow", "security.insecure", str(ctx), env=env)
    # the daemon was started granting security.insecure only
    refused = run_bkpy("build", "--progress", "quiet", "--allow", "network.host", str(ctx),
                       env=env, check=False)
    assert refused.code == 1
    assert ("failed to build: "
            "failed to solve: granting entitlement network.host is not allowed by build "
            "daemon configuration") in refused.err


def test_add_host_travels_to_the_daemon(tmp_path: Path, shared_daemon: Daemon) -> None:
    env = client_env(tmp_path, shared_daemon)
    ctx = _context(tmp_path / "ctx", {"Dockerfile": "FROM busybox\nRUN cat /etc/hosts > /hosts\n"})
    out = tmp_path / "out"
    run_bkpy("build", "--progress", "quiet", "--add-host", "db:10.1.2.3", "--add-host",
             "v6=fd00::2", "-o", f"type=local,dest={out}", str(ctx), env=env)
    assert (out / "hosts").read_text().splitlines()[-2:] == ["10.1.2.3\tdb", "fd00::2\tv6"]
    bad = run_bkpy("build", "--add-host", "db:nope", str(ctx), env=env, check=False)
    assert bad.code == 2 and "invalid IP address 'nope'" in bad.err


def test_shm_size_and_ulimits_travel_to_the_daemon(tmp_path: Path, shared_daemon: Daemon) -> None:
    env = client_env(tmp_path, shared_daemon)
    ctx = _context(tmp_path / "ctx", {"Dockerfile": (
        "FROM busybox\n"
        "RUN df -k /dev/shm | tail -1 | awk '{print $2}' > /shm"
        " && ulimit -n > /limits && ulimit -Hn >> /limits && ulimit -Hc >> /limits\n")})
    out = tmp_path / "out"
    run_bkpy("build", "--progress", "quiet", "--shm-size", "96m", "--ulimit", "nofile=512:1024",
             "--ulimit", "core=-1", "-o", f"type=local,dest={out}", str(ctx), env=env)
    assert (out / "shm").read_text() == f"{96 * 1024}\n"
    assert (out / "limits").read_text().split() == ["512", "1024", "unlimited"]
    bad = run_bkpy("build", "--ulimit", "nofile=10:5", str(ctx), env=env, check=False)
    assert bad.code == 2 and ('invalid argument "nofile=10:5" for "--ulimit" flag: ulimit soft '
                              'limit must be less than or equal to hard limit: 10 > 5') in bad.err
    bad = run_bkpy("build", "--shm-size", "lots", str(ctx), env=env, check=False)
    assert bad.code == 2 and "invalid size: 'lots'" in bad.err


def test_error_screens_over_the_wire_are_buildx_s(
        tmp_path: Path, shared_daemon: Daemon, busybox_layout: Path) -> None:
    """The daemon's rendered error is taken apart again: the failed step's block comes with
    the progress (none in quiet mode), the ERROR line gets buildx's ``failed to build: ``,
    as recorded from the referee (tests/e2e/test_error_screens.py)."""
    import subprocess

    from tests.e2e.error_screens_cases import CASES, screen
    from tests.registry.fixtures import RegistryServer

    expected = json.loads((Path(__file__).resolve().parents[2] / "testdata" / "screens" /
                           "error-screens.json").read_text())
    env = client_env(tmp_path, shared_daemon)
    (tmp_path / "registry").mkdir()
    server = RegistryServer(tmp_path / "registry")
    try:
        base = f"{server.host}/screens/busybox"
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                        f"oci:{busybox_layout}", f"docker://{base}:latest"], check=True,
                       timeout=120)
        for case in ("missing-base-plain", "missing-base-quiet", "run-fails-plain",
                     "run-fails-quiet"):
            dockerfile, args = CASES[case]
            ctx = _context(tmp_path / case, {"Dockerfile": dockerfile.replace("{BASE}", base)})
            r = run_bkpy("build", *args, "-o", f"type=local,dest={tmp_path / 'out'}",
                         str(ctx), env=env, check=False)
            assert r.code == expected[case]["exit"] and "Traceback" not in r.err
            got = [line.replace(server.host, "{REGISTRY}") for line in screen(r.err)
                   if not line.startswith("hint: ")]
            assert got == expected[case]["screen"], case
    finally:
        server.stop()
