"""A buildkitd.toml read as buildkitd reads it: sizes (binary units, percentages), durations
(Go's or seconds), GC rules with BuildKit's arithmetic, what is ignored and what is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from buildkit_py.builder.gc_filters import record_type
from buildkit_py.builder.gc_policy import PruneRule, default_rules, keep_bytes
from buildkit_py.builder.worker_info import worker_platforms
from buildkit_py.config import GCPolicy, load_config, parse_duration, parse_size
from buildkit_py.errors import UsageError
from buildkit_py.units import DiskSpace, filter_matches, parse_disk_space, parse_prune_filters

GiB = 1 << 30


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "buildkitd.toml"
    path.write_text(text)
    return load_config(path)


@pytest.mark.parametrize(("text", "want"), [
    # BuildKit's own cases (cmd/buildkitd/config/load_test.go): go-units, binary
    (20, DiskSpace(bytes=20)), ("40MB", DiskSpace(bytes=40 << 20)),
    ("20%", DiskSpace(percentage=20)), ("10GB", DiskSpace(bytes=10 * GiB)),
    ("512MiB", DiskSpace(bytes=512 << 20)), ("1.5g", DiskSpace(bytes=3 * GiB // 2)),
])
def test_disk_space_is_binary_or_a_percentage(text: str | int, want: DiskSpace) -> None:
    assert parse_disk_space(text) == want


def test_one_size_grammar_everywhere() -> None:
    # --keep-storage, [gc] keep-storage, [history] max-size: as buildx's --keep-storage
    # (docker's MemBytes) and the Dockerfile's tmpfs size=, 10GB is 10 GiB
    assert parse_size("10GB") == 10 * GiB
    assert parse_size("512MB") == 512 << 20
    assert parse_size(1000) == 1000
    with pytest.raises(UsageError, match="invalid size '10 parsecs'"):
        parse_size("10 parsecs")


def test_percentages_count_whole_gib_of_the_disk_as_buildkit() -> None:
    # BuildKit: (total * pct / 100 / GiB + 1) * 1e9
    assert DiskSpace(percentage=10).as_bytes(100 * GiB) == 11 * 10**9
    assert DiskSpace(percentage=10).as_bytes(0) == 2 * 10**9  # disk size unknown
    assert DiskSpace(bytes=5).as_bytes(100 * GiB) == 5


@pytest.mark.parametrize(("text", "seconds"), [
    ("48h", 172800.0), (3600, 3600.0), ("3600", 3600.0), ("1h30m", 5400.0)])
def test_durations_are_go_or_seconds(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_gc_rules_and_what_is_ignored(tmp_path: Path) -> None:
    cfg = _load(tmp_path, """
debug = true
proxyNetwork = true
[gc]
enabled = true
[grpc]
address = ["unix:///run/buildkit/buildkitd.sock", "tcp://0.0.0.0:1234"]
gid = 1234
[grpc.tls]
cert = "/etc/buildkit/tls.crt"
key = "/etc/buildkit/tls.key"
ca = "/etc/buildkit/tlsca.crt"
[worker.oci]
snapshotter = "stargz"
binary = "crun"
max-parallelism = 3
gckeepstorage = 123456789
networkMode = "cni"
[[worker.oci.gcpolicy]]
all = true
filters = ["foo==bar"]
keepBytes = 20
keepDuration = 3600
[[worker.oci.gcpolicy]]
reservedSpace = "20%"
maxUsedSpace = "10GB"
minFreeSpace = "1GB"
keepDuration = "24h"
[worker.containerd]
namespace = "buildkit"
[registry."docker.io"]
mirrors = ["mirror.gcr.io"]
http = false
[[registry."docker.io".keypair]]
key = "key.pem"
cert = "cert.pem"
[somethingNew]
x = 1
""")
    assert cfg.debug and cfg.max_parallelism == 3 and cfg.oci_runtime == "crun"
    assert cfg.grpc.addresses == ["unix:///run/buildkit/buildkitd.sock", "tcp://0.0.0.0:1234"]
    assert (cfg.grpc.gid, cfg.grpc.tls_cert, cfg.grpc.tls_ca) == (
        1234, "/etc/buildkit/tls.crt", "/etc/buildkit/tlsca.crt")
    gc = cfg.gc
    assert gc.buildkitd and gc.enabled and gc.reserved_space == DiskSpace(bytes=123456789)
    first, second = gc.rules
    assert (first.all, first.filters, first.keep_duration, first.reserved_space) == (
        True, ("foo==bar",), 3600.0, DiskSpace(bytes=20))
    assert (second.reserved_space, second.max_used_space, second.min_free_space,
            second.keep_duration) == (DiskSpace(percentage=20), DiskSpace(bytes=10 * GiB),
                                      DiskSpace(bytes=GiB), 86400.0)
    assert cfg.registries["docker.io"].keypairs == [("cert.pem", "key.pem")]
    assert cfg.ignored == [
        "proxyNetwork: ignored (bkpy enforces no proxy network)",
        "worker.containerd: ignored (bkpy has no containerd worker; its OCI worker builds)",
        "worker.oci.snapshotter = 'stargz': ignored (bkpy has only its overlayfs snapshotter)",
        "worker.oci.networkMode: ignored (RUN steps get loopback only, or the host's network)",
        "somethingNew: unknown key, ignored (neither a bkpy nor a buildkitd setting)",
    ]


def test_worker_platforms_and_labels(tmp_path: Path) -> None:
    cfg = _load(tmp_path, '[worker.oci]\nplatforms = ["linux/arm64/v8", "amd64", "linux/arm64"]'
                          '\n[worker.oci.labels]\n"org.example.team" = "builds"\n')
    # normalised as buildkitd parses them, duplicates once; neither is named as ignored
    assert worker_platforms(cfg) == ["linux/arm64", "linux/amd64"]
    assert cfg.worker_labels == {"org.example.team": "builds"}
    assert cfg.ignored == []


def test_bkpyd_refuses_a_bad_platform_with_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "buildkitd.toml"
    config.write_text('[worker.oci]\nplatforms = ["linux/amd64", "linux/*"]\n')
    p = subprocess.run([sys.executable, "-m", "buildkit_py.control.daemon", "--root",
                        str(tmp_path / "root"), "--config", str(config),
                        "--addr", f"unix://{tmp_path}/d.sock"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    assert "[worker.oci]: invalid platforms: " in p.stderr and "wildcards" in p.stderr
    assert "Traceback" not in p.stderr


def test_gc_false_and_no_worker_table_mean_no_buildkit_gc(tmp_path: Path) -> None:
    off = _load(tmp_path, "[worker.oci]\ngc = false\n")
    assert off.gc.buildkitd and not off.gc.enabled
    assert not _load(tmp_path, "max-parallelism = 2\n").gc.buildkitd


@pytest.mark.parametrize(("text", "message"), [
    ('[[worker.oci.gcpolicy]]\nfilters = ["type=="]\n', "gcpolicy #1: invalid filter"),
    ('[worker.oci]\nreservedSpace = "ten"\n', "reservedSpace: invalid disk space ten"),
    ('[[worker.oci.gcpolicy]]\nkeepDuration = "2 days"\n', "invalid duration '2 days'"),
    ('[worker.oci]\nmax-parallelism = "4"\n', "'max-parallelism' has the wrong type"),
    ('[worker.oci]\nlabels = "team=builds"\n', "'labels' has the wrong type"),
])
def test_bad_values_are_usage_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        _load(tmp_path, text)


def test_bkpyd_refuses_a_bad_policy_with_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "buildkitd.toml"
    config.write_text('[worker.oci]\n[[worker.oci.gcpolicy]]\nfilters = ["type~=("]\n')
    p = subprocess.run([sys.executable, "-m", "buildkit_py.control.daemon", "--root",
                        str(tmp_path / "root"), "--config", str(config),
                        "--addr", f"unix://{tmp_path}/d.sock"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    assert "gcpolicy #1: invalid filter 'type~=('" in p.stderr
    assert "Traceback" not in p.stderr


def test_keep_bytes_follows_buildkit() -> None:
    def rule(reserved: int = 0, max_used: int = 0, min_free: int = 0) -> PruneRule:
        return PruneRule(False, (), 0.0, reserved, max_used, min_free)

    assert keep_bytes(100, 50, rule()) == 0  # no limit: every candidate goes
    assert keep_bytes(100, 50, rule(max_used=60)) == 60
    assert keep_bytes(100, 50, rule(max_used=60, min_free=80)) == 60  # min(60, 100-30)
    assert keep_bytes(100, 50, rule(max_used=90, min_free=80)) == 70
    assert keep_bytes(100, 50, rule(min_free=40)) == 100  # enough free: nothing goes
    assert keep_bytes(100, 50, rule(max_used=10, reserved=30)) == 30  # never below reserved


def test_default_rules_are_buildkits_four() -> None:
    rules = default_rules(GCPolicy(buildkitd=True), 1000 * GiB)
    assert [r.all for r in rules] == [False, False, False, True]
    assert rules[0].filters == ("type==source.local", "type==exec.cachemount",
                                "type==source.git.checkout")
    assert rules[0].max_used_space == DiskSpace(bytes=512 * 10**6)
    # 10% of 1000 GiB is over the 10 GB cap; 80% over the 100 GB cap; 20% stays
    assert (rules[1].reserved_space, rules[1].max_used_space, rules[1].min_free_space) == (
        DiskSpace(bytes=10 * 10**9), DiskSpace(bytes=100 * 10**9), DiskSpace(percentage=20))
    assert rules[1].keep_duration == 60 * 86400.0


def test_filters_select_record_types() -> None:
    parsed = parse_prune_filters(["type==source.local", "type==regular,description~=^RUN"])

    def fields(kind: str, desc: str):  # type: ignore[no-untyped-def]
        return lambda f: {"type": (kind, True), "description": (desc, True)}.get(f, ("", False))

    assert filter_matches(parsed, fields("source.local", ""))
    assert filter_matches(parsed, fields("regular", "RUN make"))
    assert not filter_matches(parsed, fields("regular", "COPY . /"))
    assert record_type("local:abc", "[internal] load build context") == "source.local"
    assert record_type("snap:layer-1", "[internal] load git source https://x/y.git") == \
        "source.git.checkout"
    assert record_type("snap:layer-2", "[2/3] RUN make") == "regular"


def test_bkpyd_will_not_share_buildkitds_state_directory(tmp_path: Path) -> None:
    root = tmp_path / "buildkit"
    root.mkdir()
    (root / "buildkitd.lock").touch()
    config = tmp_path / "buildkitd.toml"
    config.write_text(f'root = "{root}"\n')
    p = subprocess.run([sys.executable, "-m", "buildkit_py.control.daemon", "--config",
                        str(config), "--addr", f"unix://{tmp_path}/d.sock"],
                       capture_output=True, text=True, timeout=60,
                       env={k: v for k, v in os.environ.items() if k != "BKPY_ROOT"})
    assert p.returncode == 2, p.stderr
    assert f"state directory {root} belongs to buildkitd" in p.stderr
    assert not (root / "solver").exists()
