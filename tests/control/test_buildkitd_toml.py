"""A buildx user's buildkitd.toml replayed into a real bkpyd: its [grpc] address and TLS
serve, the keys that do not apply are named at start, builds pull through its registry
mirror, and its three [[worker.oci.gcpolicy]] rules collect the cache as buildkitd would."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from buildkit_py.api.tls import TLSFiles
from buildkit_py.client.remote import RemoteClient
from tests.control.conftest import free_port, run_bkpy
from tests.control.test_tls import _write_ca, _write_leaf
from tests.images import push_layout, write_busybox_layout
from tests.registry.fixtures import RegistryServer

TEMPLATE = Path(__file__).parents[2] / "testdata" / "buildkitd" / "buildkitd.toml"
MiB = 1 << 20


def _pki(d: Path) -> Path:
    d.mkdir()
    ca = _write_ca(d / "ca.pem", "bkpy test CA")
    _write_leaf(ca, d / "server", "bkpyd", server=True)
    _write_leaf(ca, d / "client", "client", server=False)
    return d


def _start(config: Path, log: Path, endpoint: str, tls: TLSFiles) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("BKPY_ROOT", "BKPY_DEBUG")}
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "buildkit_py.control.daemon",
                                 "--config", str(config)],  # no --root, no --addr, no --tls*
                                stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=env)
    client = RemoteClient(endpoint, tls)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"bkpyd exited {proc.returncode}:\n{log.read_text()}")
            if client.ping(timeout=0.5):
                return proc
            time.sleep(0.1)
    finally:
        client.close()
    proc.kill()
    raise AssertionError("bkpyd did not become ready:\n" + log.read_text())


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0


def _records(env: dict[str, str]) -> dict[str, tuple[str, int]]:
    """The daemon's cache records: id -> (description, size in bytes)."""
    out = run_bkpy("du", "--verbose", env=env).out
    records: dict[str, tuple[str, int]] = {}
    for block in out.split("\n\n"):
        fields = dict(re.findall(r"^([\w ]+):\s+(.*)$", block, re.M))
        if fields.get("Type") == "regular":
            size = fields["Size"]
            number, unit = float(size[:-2] if size.endswith("kB") or size.endswith("MB")
                                 else size[:-1]), size[-2:]
            scale = {"kB": 1e3, "MB": 1e6}.get(unit, 1)
            records[fields["ID"]] = (fields["Description"], int(number * scale))
    return records


def test_buildkitd_toml_serves_names_what_it_ignores_and_its_gc_policies_apply(
        tmp_path: Path) -> None:
    pki = _pki(tmp_path / "pki")
    (tmp_path / "mirror").mkdir()
    mirror = RegistryServer(tmp_path / "mirror")
    try:
        # the mirror holds docker.io's busybox; there is no way to docker.io from here
        layout = write_busybox_layout(tmp_path / "busybox")
        push_layout(layout, f"{mirror.host}/library/busybox")
        port = free_port()
        endpoint = f"tcp://127.0.0.1:{port}"
        config = tmp_path / "buildkitd.toml"
        config.write_text(TEMPLATE.read_text()
                          .replace("@ROOT@", str(tmp_path / "root"))
                          .replace("@PORT@", str(port)).replace("@PKI@", str(pki))
                          .replace("@MIRROR_PORT@", str(mirror.port)))
        tls = TLSFiles(cacert=str(pki / "ca.pem"), cert=str(pki / "client.pem"),
                       key=str(pki / "client.key"))
        log = tmp_path / "bkpyd.log"
        daemon = _start(config, log, endpoint, tls)  # mutual TLS on [grpc]'s address

        text = log.read_text()
        ignored = [line.partition("config: ")[2] for line in text.splitlines()
                   if "WARNING bkpyd: config: " in line]
        assert ignored == [
            "grpc.debugAddress: ignored (bkpyd serves no debug listener)",
            "otel: ignored (bkpy exports no OpenTelemetry traces)",
            "worker.oci.cniPoolSize: ignored (bkpy uses no CNI)",
        ]
        assert f"listening on {endpoint} (root {tmp_path / 'root'})" in text
        assert "DEBUG" in text  # debug = true
        assert "plain TCP" not in text

        env = {"BKPY_CONFIG": str(tmp_path / "client"), "BKPY_ROOT": str(tmp_path / "emb")}
        run_bkpy("builder", "create", "--name", "bk", "--driver", "remote", endpoint,
                 "--driver-opt", f"cacert={pki / 'ca.pem'},cert={pki / 'client.pem'},"
                                 f"key={pki / 'client.key'}", "--use", env=env)
        _check_inspect(run_bkpy("builder", "inspect", env=env).out)
        for name in ("old", "new"):  # two images of 2 MiB on busybox (2 MB), old first
            ctx = tmp_path / name
            ctx.mkdir()
            (ctx / "Dockerfile").write_text(
                f"FROM busybox\nRUN head -c {2 * MiB} /dev/zero > /{name}\n")
            run_bkpy("build", "--progress", "plain", str(ctx), env=env)
            time.sleep(1.1)  # distinct last-use times
        before = _records(env)
        runs = {next(rid for rid, (desc, _) in before.items() if f"> /{name}" in desc): name
                for name in ("old", "new")}
        assert sum(size for _, size in before.values()) > 5 * MiB  # ~6.2 MB
        _stop(daemon)

        # the restart collects, as buildkitd does at start: rules 1 and 2 spare everything
        # (used within 48 hours); rule 3 drops the least recently used records until the
        # cache is under its 3MB (3 MiB) cap: busybox's and the old image's, not the new one
        daemon = _start(config, log, endpoint, tls)
        deadline = time.monotonic() + 30
        while "gc: " not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert re.search(r"INFO \S+: gc: 2 cache records removed", log.read_text()), \
            log.read_text()[-2000:]
        after = _records(env)
        assert sum(size for _, size in after.values()) < 3 * MiB
        assert {runs[rid] for rid in after if rid in runs} == {"new"}, f"{before}\n{after}"
        # the new image still builds from its cache; the old one runs its step again
        new = run_bkpy("build", "--progress", "plain", str(tmp_path / "new"), env=env).err
        assert re.search(r"#(\d+) \[2/2\] RUN head .*> /new\n#\1 CACHED", new), new
        old = run_bkpy("build", "--progress", "plain", str(tmp_path / "old"), env=env).err
        assert re.search(r"#(\d+) \[2/2\] RUN head .*> /old\n#\1 cache miss", old), old
        _stop(daemon)
    finally:
        mirror.stop()


def _check_inspect(out: str) -> None:
    """The worker as buildx shows a buildkitd's: [worker.oci]'s platforms first (the
    detected ones amd64 runs, 386, are not repeated), its labels among the worker's own,
    and the three GC rules with their sizes for this disk."""
    platforms = re.search(r"^Platforms: +(.*)$", out, re.M)
    assert platforms is not None, out
    listed = platforms.group(1).split(", ")
    assert listed[:2] == ["linux/amd64", "linux/arm64"] and "linux/386" not in listed, out
    labels = out.partition("Labels:\n")[2].partition("GC Policy")[0]
    assert " org.example.team:                            builds\n" in labels, out
    assert " org.mobyproject.buildkit.worker.executor:    oci\n" in labels, out
    gib = r"\d+(\.\d+)?GiB"  # 10% and 5% of this disk
    assert re.search(
        r"GC Policy rule#0:\n"
        r" All:            false\n"
        r" Filters:        type==source.local type==exec.cachemount type==source.git.checkout\n"
        r" Keep Duration:  48h0m0s\n"
        r" Max Used Space: 512MiB\n"
        r"GC Policy rule#1:\n"
        r" All:            false\n"
        r" Keep Duration:  1440h0m0s\n"
        rf" Reserved Space: {gib}\n"
        rf" Min Free Space: {gib}\n"
        r"GC Policy rule#2:\n"
        r" All:            true\n"
        r" Max Used Space: 3MiB\n\Z", out), out


def test_grpc_unix_address_and_its_group_come_from_the_config(tmp_path: Path) -> None:
    sock = tmp_path / "buildkitd.sock"
    config = tmp_path / "buildkitd.toml"
    config.write_text(f'root = "{tmp_path / "root"}"\n[grpc]\naddress = ["unix://{sock}"]\n'
                      "gid = 1234\n[worker.oci]\ngc = false\n")
    log = tmp_path / "bkpyd.log"
    daemon = _start(config, log, f"unix://{sock}", TLSFiles())
    try:
        st = sock.stat()
        assert (st.st_gid, st.st_mode & 0o777) == (1234, 0o660)
        assert "gc: " not in log.read_text()  # gc = false: no collection at start
    finally:
        _stop(daemon)
    assert not sock.exists()


def test_the_first_configured_platform_is_the_default_build_and_target_platform(
        tmp_path: Path) -> None:
    sock = tmp_path / "buildkitd.sock"
    config = tmp_path / "buildkitd.toml"
    config.write_text(f'root = "{tmp_path / "root"}"\n[grpc]\naddress = ["unix://{sock}"]\n'
                      '[worker.oci]\ngc = false\nplatforms = ["linux/arm64", "linux/amd64"]\n')
    daemon = _start(config, tmp_path / "bkpyd.log", f"unix://{sock}", TLSFiles())
    try:
        env = {"BKPY_CONFIG": str(tmp_path / "client"), "BKPY_ROOT": str(tmp_path / "emb")}
        run_bkpy("builder", "create", "--name", "bk", "--driver", "remote", f"unix://{sock}",
                 "--use", env=env)
        inspect = run_bkpy("builder", "inspect", env=env).out
        # (then the detected platforms these two do not run, if any: not 386 under amd64)
        assert re.search(r"^Platforms:     linux/arm64, linux/amd64(, |$)", inspect, re.M), \
            inspect
        assert "linux/386" not in inspect
        assert "GC Policy" not in inspect  # gc = false: no rules
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text("FROM scratch\nARG BUILDPLATFORM\nARG TARGETPLATFORM\n"
                                        "LABEL b=$BUILDPLATFORM t=$TARGETPLATFORM\n")
        run_bkpy("build", "--progress", "quiet", "--output",
                 f"type=oci,dest={tmp_path / 'out.tar'}", str(ctx), env=env)
        raw = subprocess.run(["skopeo", "inspect", "--config", "--raw",
                              f"oci-archive:{tmp_path / 'out.tar'}"], check=True,
                             capture_output=True, text=True, timeout=60).stdout
        image = json.loads(raw)
        # as buildkitd: both default to the worker's first platform, not the host's
        assert image["architecture"] == "arm64"
        assert image["config"]["Labels"] == {"b": "linux/arm64", "t": "linux/arm64"}
    finally:
        _stop(daemon)
