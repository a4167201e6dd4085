"""config.json contents, user/path resolution, generated network files, binfmt handling."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from buildkit_py import rootpath
from buildkit_py.errors import BuildError
from buildkit_py.executor import binfmt
from buildkit_py.executor.cache_mounts import cache_key
from buildkit_py.executor.network_files import filter_resolv_conf, hosts_content
from buildkit_py.executor.spec import (
    DEFAULT_CAPS,
    DEFAULT_PATH,
    MASKED_PATHS,
    SpecInput,
    build_spec,
    process_env,
)
from buildkit_py.executor.stubs import MountStubs
from buildkit_py.executor.user import Identity, resolve_user
from buildkit_py.platforms import parse_platform
from tests.executor.conftest import GROUP, PASSWD


def _spec(**kw: object) -> dict[str, Any]:
    base: dict[str, object] = dict(
        rootfs=Path("/r"), args=["true"], env=[], cwd="/", identity=Identity(0, 0, (0,))
    )
    base.update(kw)
    return build_spec(SpecInput(**base))  # type: ignore[arg-type]


def test_spec_default_sandbox_fields() -> None:
    spec = _spec()
    proc = spec["process"]
    assert proc["capabilities"]["bounding"] == list(DEFAULT_CAPS)
    assert proc["noNewPrivileges"] is False and proc["terminal"] is False
    assert proc["env"][0].startswith("PATH=/usr/local/sbin:")
    assert spec["hostname"] == "buildkitsandbox"
    assert [m["destination"] for m in spec["mounts"]][:6] == [
        "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys",
    ]  # fmt: skip
    assert "ro" in spec["mounts"][5]["options"]
    ns = [n["type"] for n in spec["linux"]["namespaces"]]
    assert {"pid", "ipc", "uts", "mount", "network"} <= set(ns)
    assert spec["linux"]["maskedPaths"] == list(MASKED_PATHS)
    assert "/proc/sys" in spec["linux"]["readonlyPaths"]
    assert spec["linux"]["resources"]["devices"][0] == {"allow": False, "access": "rwm"}
    assert proc["rlimits"][0]["type"] == "RLIMIT_NOFILE"


def test_spec_host_network_has_no_network_namespace() -> None:
    ns = [n["type"] for n in _spec(network="host")["linux"]["namespaces"]]
    assert "network" not in ns


def test_spec_insecure_drops_masks_and_allows_devices() -> None:
    spec = _spec(security="insecure")
    assert "maskedPaths" not in spec["linux"] and "readonlyPaths" not in spec["linux"]
    assert spec["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert "ro" not in spec["mounts"][5]["options"]
    assert "CAP_SYS_ADMIN" in spec["process"]["capabilities"]["effective"]


@pytest.mark.parametrize(
    ("kw", "message"),
    [({"network": "bridge"}, "invalid network mode"), ({"security": "x"}, "invalid security"),
     ({"args": []}, "empty command")],
)  # fmt: skip
def test_spec_rejects_bad_input(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(BuildError, match=message):
        _spec(**kw)


@pytest.fixture
def etc_root(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text(PASSWD)
    (tmp_path / "etc/group").write_text(GROUP)
    return tmp_path


def test_numeric_user_group_needs_no_passwd(tmp_path: Path) -> None:
    assert resolve_user(tmp_path, "12:34") == Identity(12, 34, (34,))
    assert resolve_user(tmp_path, "root:root") == Identity(0, 0, (0,))
    assert resolve_user(tmp_path, "") == Identity(0, 0, (0,))
    assert resolve_user(tmp_path, "55") == Identity(55, 0, (0,))
    with pytest.raises(BuildError, match="unable to find user alice"):
        resolve_user(tmp_path, "alice")


def test_passwd_symlink_is_resolved_inside_the_root(etc_root: Path) -> None:
    real = etc_root / "etc/passwd.real"
    (etc_root / "etc/passwd").rename(real)
    os.symlink("/etc/passwd.real", etc_root / "etc/passwd")  # absolute: relative to the root
    assert resolve_user(etc_root, "alice") == Identity(1000, 1000, (1000, 50))


def test_passwd_that_is_not_a_regular_file_is_refused(etc_root: Path) -> None:
    (etc_root / "etc/passwd").unlink()
    (etc_root / "etc/passwd").mkdir()
    with pytest.raises(BuildError, match="not a regular file"):
        resolve_user(etc_root, "alice")


def test_resolve_in_root_never_escapes(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    os.symlink("../../../../etc", tmp_path / "a/up")
    os.symlink("/etc", tmp_path / "abs")
    assert rootpath.resolve(tmp_path, "/a/up/passwd") == str(tmp_path / "etc/passwd")
    assert rootpath.resolve(tmp_path, "/abs/x/../y") == str(tmp_path / "etc/y")
    assert rootpath.resolve(tmp_path, "../../..") == str(tmp_path)
    os.symlink("loop", tmp_path / "loop")
    with pytest.raises(BuildError, match="too many levels"):
        rootpath.resolve(tmp_path, "/loop")
    assert rootpath.clean("a//b/./../c/") == "/a/c"


def test_hosts_and_resolv_conf_content() -> None:
    assert hosts_content("h", [("db", "10.0.0.2")]).decode().splitlines() == [
        "127.0.0.1\tlocalhost h", "::1\tlocalhost ip6-localhost ip6-loopback", "10.0.0.2\tdb",
    ]  # fmt: skip
    filtered = filter_resolv_conf(b"nameserver 127.0.0.53\nnameserver 1.1.1.1\nsearch x\n")
    assert filtered == b"nameserver 1.1.1.1\nsearch x\n"
    only_local = filter_resolv_conf(b"nameserver 127.0.0.1\nnameserver ::1\noptions edns0\n")
    assert b"127.0.0.1" not in only_local and b"nameserver 8.8.8.8" in only_local
    assert b"options edns0" in only_local


def test_process_env_is_what_buildkit_and_runc_give() -> None:
    # Set one by one: a repeated name keeps its first place; BuildKit's tracing variables
    # are appended unless the step sets them; PATH keeps its place (no default then).
    env = process_env(["A=1", "PATH=/bin", "A=2", "BARE", "OTEL_TRACES_EXPORTER=none"])
    assert env == ["A=2", "PATH=/bin", "OTEL_TRACES_EXPORTER=none",
                   "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=unix:///dev/otel-grpc.sock",
                   "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc"]
    assert process_env([])[0] == f"PATH={DEFAULT_PATH}"


def test_stub_recording_lists_missing_paths_deepest_first(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    stubs = MountStubs.record(tmp_path, ["/etc/hosts", "/run/buildkit/agent", "/etc", "/"])
    assert stubs.paths == ["/run/buildkit/agent", "/etc/hosts", "/run/buildkit", "/run"]


def test_cache_key_is_readable_and_distinct() -> None:
    assert cache_key("/root/.cache").startswith("root_.cache-")
    assert cache_key("a/b") != cache_key("a_b")


def _fake_binfmt(tmp_path: Path, entries: dict[str, str]) -> Path:
    d = tmp_path / "binfmt"
    d.mkdir()
    (d / "status").write_text("enabled\n")
    (d / "register").write_text("")
    for name, text in entries.items():
        (d / name).write_text(text)
    return d


_ARM64_ENTRY = """enabled
interpreter /usr/bin/qemu-aarch64-static
flags: F
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
"""


def test_binfmt_entries_are_matched_by_elf_magic(tmp_path: Path) -> None:
    jar = "enabled\ninterpreter /bin/jexec\nflags: \nextension .jar\n"
    d = _fake_binfmt(tmp_path, {"whatever-name": _ARM64_ENTRY, "jar": jar})
    assert binfmt.find_handler("arm64", d) is not None
    assert binfmt.find_handler("riscv64", d) is None
    assert binfmt.emulated_platforms(d) == ["linux/arm64"]
    (d / "whatever-name").write_text(_ARM64_ENTRY.replace("enabled", "disabled", 1))
    assert binfmt.emulated_platforms(d) == []


def test_real_binfmt_lists_arm64() -> None:
    assert "linux/arm64" in binfmt.emulated_platforms()


def test_missing_emulator_error_names_the_package(tmp_path: Path) -> None:
    d = _fake_binfmt(tmp_path, {})
    with pytest.raises(BuildError) as info:
        binfmt.ensure_platform("linux/s390x", d, emulator_dir=tmp_path)
    assert "no binfmt_misc handler for s390x" in info.value.message
    assert info.value.hint is not None and "apt-get install qemu-user-static" in info.value.hint


def test_unsupported_platforms_error() -> None:
    with pytest.raises(BuildError, match="no emulation support"):
        binfmt.ensure_platform("linux/mips64le")
    with pytest.raises(BuildError, match="only linux"):
        binfmt.ensure_platform("windows/amd64")
    binfmt.ensure_platform(("linux", "amd64", ""))  # native: nothing to do
    binfmt.ensure_platform("linux/386")  # amd64 hosts run 386 binaries natively


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("linux/arm/v7", ("linux", "arm", "v7")),
        ("aarch64", ("linux", "arm64", "")),
        (("linux", "x86_64", ""), ("linux", "amd64", "")),
        ("linux/ppc64el", ("linux", "ppc64le", "")),
        ("linux/i686", ("linux", "386", "")),
        ("armv7l", ("linux", "arm", "v7")),
        # where binfmt's own alias table used to drop the variant
        ("linux/armhf", ("linux", "arm", "v7")),
        ("linux/armel", ("linux", "arm", "v6")),
        ("linux/arm", ("linux", "arm", "v7")),
        (("linux", "aarch64", "v8"), ("linux", "arm64", "")),
    ],
)
def test_parse_platform(value: object, expected: tuple[str, str, str]) -> None:
    assert binfmt.parse_platform(value) == expected


@pytest.mark.parametrize("spec", ["linux/armhf", "linux/armel", "linux/arm", "linux/arm/7",
                                  "linux/aarch64", "linux/arm64/v8", "linux/x86_64",
                                  "linux/x86-64/v1", "linux/i386", "linux/amd64/v3"])
def test_binfmt_and_platforms_normalise_alike(spec: str) -> None:
    p = parse_platform(spec)
    assert binfmt.parse_platform(spec) == (p.os, p.architecture, p.variant)


def test_armhf_and_armel_find_the_arm_emulator(tmp_path: Path) -> None:
    arm = _ARM64_ENTRY.replace("qemu-aarch64", "qemu-arm").replace(
        "7f454c460201010000000000000000000200b700", "7f454c4601010100000000000000000002002800")
    d = _fake_binfmt(tmp_path, {"qemu-arm": arm})
    assert binfmt.find_handler("armhf", d) is not None
    assert binfmt.find_handler("armel", d) is not None
    assert binfmt.find_handler("arm64", d) is None


def test_register_handler_writes_an_f_flag_entry_to_the_kernel() -> None:
    name = f"bkpy-test-riscv64-{os.getpid()}"
    entry = binfmt.BINFMT_DIR / name
    try:
        binfmt.register_handler("riscv64", Path("/usr/bin/qemu-riscv64-static"), name=name)
        text = entry.read_text()
        assert "interpreter /usr/bin/qemu-riscv64-static" in text
        assert "flags: F" in text
        assert text.startswith("enabled")
        assert any(e.name == name for e in binfmt.read_entries())
    finally:
        binfmt.unregister_handler(name)
    assert not entry.exists()
