"""``RUN --mount=type=cache`` instances as BuildKit's ``exec.cachemount`` records: listed by
``bkpy du``, removed by ``bkpy prune`` (also with ``--filter type=exec.cachemount``) unless
a build holds them, and collected by a buildkitd.toml's GC rules in bkpyd."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from buildkit_py.executor.cache_mounts import CacheMountManager
from tests.control.conftest import Daemon, MakeDaemon, client_env, run_bkpy

BUSYBOX = Path("/var/cache/bkpy-test/busybox-amd64")
# a fresh cache prints FRESH, a kept one KEPT; the blob is 300000 bytes (75 blocks of 4 KiB
# with its directory: 307.2 kB, as BuildKit's du shows it)
STEP = ('RUN --mount=type=cache,target=/cache,id=h3cache ["/bin/busybox","sh","-c",'
        '"if [ -e /cache/blob ]; then echo KEPT; else echo FRESH; fi; '
        '/bin/busybox head -c 300000 /dev/zero > /cache/blob"]')
DESCRIPTION = ('cached mount /cache from exec /bin/busybox sh -c if [ -e /cache/blob ]; then '
               'echo KEPT; else echo FRESH; fi; /bin/busybox head -c 300000 /dev/zero > '
               '/cache/blob with id "h3cache"')


def _context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "busybox").write_bytes(BUSYBOX.read_bytes())
    (ctx / "busybox").chmod(0o755)
    (ctx / "Dockerfile").write_text(f"FROM scratch\nCOPY busybox /bin/busybox\n{STEP}\n")
    return ctx


def _run_step(ctx: Path, env: dict[str, str]) -> str:
    """FRESH or KEPT: what the step found in its cache (run again with --no-cache)."""
    err = run_bkpy("build", "--no-cache", "--progress", "plain", str(ctx), env=env).err
    found = re.findall(r"^#\d+ [\d.]+ (FRESH|KEPT)$", err, re.M)
    assert len(found) == 1, err
    return found[0]


def _records(env: dict[str, str]) -> list[dict[str, str]]:
    out = run_bkpy("du", "--verbose", env=env).out
    return [dict(re.findall(r"^([\w ]+):\s+(.*)$", block, re.M))
            for block in out.split("\n\n") if block.startswith("ID:")]


def _mounts(env: dict[str, str]) -> list[dict[str, str]]:
    return [r for r in _records(env) if r.get("Type") == "exec.cachemount"]


def test_du_lists_and_prune_removes_cache_mounts_unless_in_use(tmp_path: Path) -> None:
    env = client_env(tmp_path)
    ctx = _context(tmp_path)
    assert _run_step(ctx, env) == "FRESH"
    assert _run_step(ctx, env) == "KEPT"
    [mount] = _mounts(env)
    assert mount["Description"] == DESCRIPTION
    assert mount["Size"] == "307.2kB"  # go-units HumanSize, as buildx prints it
    assert (mount["Usage count"], mount["Reclaimable"], mount["Mutable"]) == ("2", "true",
                                                                             "true")
    assert re.fullmatch(r"[0-9a-z]{25}", mount["ID"])
    table = run_bkpy("du", env=env).out
    assert re.search(rf"^{mount['ID']}\*\s+true\s+307\.2kB\s", table, re.M)  # *: mutable
    assert "\nReclaimable:\t" in table and "\nTotal:\t\t" in table
    # buildx's du --filter: the selected records, no totals
    only = run_bkpy("du", "--filter", "type=exec.cachemount", env=env).out.splitlines()
    assert [line.split()[0] for line in only] == ["ID", mount["ID"] + "*"]
    unused = run_bkpy("du", "--filter", "until=1h", env=env).out.splitlines()
    assert [line.split()[0] for line in unused] == ["ID"]  # every record used this hour
    assert run_bkpy("du", "--filter", "nosuch=x", env=env, check=False).code == 2

    # a filtered prune takes the cache mount and nothing else
    regular = {r["ID"] for r in _records(env)} - {mount["ID"]}
    out = run_bkpy("prune", "-f", "--verbose", "--filter", "type=exec.cachemount", env=env).out
    assert mount["ID"] in out and "Total:\t307.2kB" in out
    assert {r["ID"] for r in _records(env)} == regular
    assert _run_step(ctx, env) == "FRESH"  # the next build starts with an empty cache

    # one a build holds (here: this process, as a RUN would) stays through a full prune
    mounts = CacheMountManager.under(Path(env["BKPY_ROOT"]) / "worker" / "executor")
    lease = mounts.acquire("h3cache", sharing="shared")
    try:
        [held] = _mounts(env)
        assert held["Reclaimable"] == "false"
        out = run_bkpy("prune", "-f", "--verbose", env=env).out
        assert held["ID"] not in out
        assert [r["ID"] for r in _records(env)] == [held["ID"]]
    finally:
        lease.release()
    out = run_bkpy("prune", "-f", "--verbose", env=env).out
    assert held["ID"] in out
    assert _records(env) == []
    assert _run_step(ctx, env) == "FRESH"


def test_keep_storage_counts_cache_mounts(tmp_path: Path) -> None:
    env = client_env(tmp_path)
    ctx = _context(tmp_path)
    _run_step(ctx, env)  # COPY (1.99 MB), then the cache mount (307 kB), then the RUN (12 kB)
    time.sleep(1.1)
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY busybox /bb2\n")
    run_bkpy("build", "--progress", "quiet", str(ctx), env=env)  # 1.99 MB more, used last
    # 4.3 MB in all: the least recently used go until the rest fits in 2 MiB, results and
    # cache mounts alike: the first COPY and the cache mount, not the RUN's layer
    [mount] = _mounts(env)
    out = run_bkpy("prune", "-f", "--verbose", "--keep-storage", "2MB", env=env).out
    assert mount["ID"] in out
    assert _mounts(env) == []
    kept = {r["Description"] for r in _records(env)}
    assert any(d.startswith("[2/2] RUN") for d in kept), kept
    assert any(d.endswith("COPY busybox /bb2") for d in kept), kept
    assert not any(d.endswith("COPY busybox /bin/busybox") for d in kept), kept


def test_bkpyd_lists_prunes_and_collects_cache_mounts(tmp_path: Path) -> None:
    root = tmp_path / "root"
    ctx = _context(tmp_path)
    # the records are made on the daemon's root before it starts, so that its GC at start
    # (buildkitd's first run) meets them
    embedded = {**client_env(tmp_path), "BKPY_ROOT": str(root)}
    _run_step(ctx, embedded)
    sock = tmp_path / "d.sock"
    config = tmp_path / "buildkitd.toml"
    config.write_text('[worker.oci]\n[[worker.oci.gcpolicy]]\n'
                      'filters = ["type==exec.cachemount"]\n')
    daemon = Daemon(root, f"unix://{sock}", ["--addr", f"unix://{sock}", "--config",
                                             str(config)], tmp_path / "d.log").start()
    try:
        env = client_env(tmp_path, daemon)
        deadline = time.monotonic() + 30
        while "gc: " not in daemon.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert re.search(r"gc: 1 cache records removed, 307200 bytes freed",
                         daemon.log.read_text()), daemon.log.read_text()
        assert _mounts(env) == [] and _records(env)  # the rule took the mount only

        # made again through the daemon: du and a filtered prune see it over the wire
        assert _run_step(ctx, env) == "FRESH"
        [mount] = _mounts(env)
        assert mount["Description"] == DESCRIPTION
        out = run_bkpy("prune", "-f", "--verbose", "--filter", "type=exec.cachemount",
                       env=env).out
        assert mount["ID"] in out
        assert _mounts(env) == []
    finally:
        assert daemon.stop() == 0


def test_a_running_builds_cache_mount_is_in_use(tmp_path: Path, make_daemon: MakeDaemon) -> None:
    """bkpyd answers du while a build runs (a prune waits for builds): the mount the RUN
    holds is in use and not reclaimable, as buildx shows BuildKit's."""
    env = client_env(tmp_path, make_daemon(busybox=False))
    ctx = _context(tmp_path)
    (ctx / "Dockerfile").write_text(
        "FROM scratch\nCOPY busybox /bin/busybox\n"
        'RUN --mount=type=cache,target=/cache,id=slow ["/bin/busybox","sh","-c",'
        '"/bin/busybox sleep 4"]\n')
    build = subprocess.Popen([sys.executable, "-m", "buildkit_py", "build", "--progress",
                              "plain", str(ctx)], env={**os.environ, **env},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        mounts: list[dict[str, str]] = []
        while not mounts and time.monotonic() < deadline and build.poll() is None:
            mounts = _mounts(env)
        assert mounts, "the build ended before its cache mount was seen"
        [mount] = mounts
        assert mount["Reclaimable"] == "false"
    finally:
        _, err = build.communicate(timeout=120)
    assert build.returncode == 0, err
    [mount] = _mounts(env)
    assert mount["Reclaimable"] == "true"
