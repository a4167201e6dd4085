"""Failures are one-line messages with exit code 1, never tracebacks, and leave nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import BKPY_RUNC, Runtimes


def _host_mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if path in line]


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("bkpy-runc: ") and "Traceback" not in err, err
    return err.strip()


def test_missing_executable_fails_like_runc(rt: Runtimes) -> None:
    ours, runc = rt.both(["nosuch-binary"])
    assert ours.rc == runc.rc == 1
    assert _one_line(ours.err) == (
        'bkpy-runc: exec: "nosuch-binary": executable file not found in $PATH')
    assert os.listdir(rt.roots["bkpy"]) == []


def test_failing_mount_names_the_step(rt: Runtimes, tmp_path: object) -> None:
    from .bundle import config

    mounts = [*config(rt.rootfs, ["true"])["mounts"],
              {"destination": "/weird", "type": "nosuchfs", "source": "none"}]
    before = _host_mounts_under(str(tmp_path))
    res = rt.run("bkpy", rt.bundle(["true"], mounts=mounts))
    assert res.rc == 1
    assert _one_line(res.err) == "bkpy-runc: mount /weird: No such device"
    assert os.listdir(rt.roots["bkpy"]) == []
    assert _host_mounts_under(str(tmp_path)) == before


def test_missing_bind_source_names_the_step(rt: Runtimes) -> None:
    from .bundle import config

    mounts = [*config(rt.rootfs, ["true"])["mounts"],
              {"destination": "/x", "type": "bind", "source": "/nonexistent-src",
               "options": ["rbind"]}]
    res = rt.run("bkpy", rt.bundle(["true"], mounts=mounts))
    assert res.rc == 1
    assert _one_line(res.err) == (
        "bkpy-runc: mount /x: source /nonexistent-src: No such file or directory")


def test_terminal_is_refused_clearly(rt: Runtimes) -> None:
    res = rt.run("bkpy", rt.bundle(["true"], **{"process.terminal": True}))
    assert res.rc == 1 and "terminal" in _one_line(res.err)


def test_invalid_config_json(rt: Runtimes, tmp_path: object) -> None:
    bundle = os.path.join(str(tmp_path), "broken")
    os.makedirs(bundle)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        f.write("{not json")
    res = rt.run("bkpy", bundle)
    assert res.rc == 1 and _one_line(res.err).startswith(f"bkpy-runc: parse {bundle}/config.json")


def test_runs_leave_no_host_mounts(rt: Runtimes) -> None:
    before = _host_mounts_under(rt.rootfs)
    caps = {k: ["CAP_SYS_ADMIN"] for k in ("bounding", "effective", "permitted")}
    res = rt.run("bkpy", rt.bundle(["sh", "-c", "mount -t tmpfs t /tmp && echo in"],
                                   **{"process.capabilities": caps}))
    assert (res.rc, res.out) == (0, "in\n")
    assert _host_mounts_under(rt.rootfs) == before == []


def test_duplicate_and_invalid_ids(rt: Runtimes, tmp_path: object) -> None:
    bundle = rt.bundle(["sleep", "30"])
    log = open(os.path.join(str(tmp_path), "log"), "w")
    assert rt.cmd("bkpy", "create", "--bundle", bundle, "dup", stdout=log,
                  stderr=log).rc == 0
    res = rt.cmd("bkpy", "create", "--bundle", bundle, "dup")
    assert res.rc == 1 and _one_line(res.err) == "bkpy-runc: container with id dup already exists"
    assert json.loads(rt.cmd("bkpy", "state", "dup").out)["status"] == "created"
    assert rt.cmd("bkpy", "delete", "dup").rc == 0
    res = rt.cmd("bkpy", "run", "--bundle", bundle, "../evil")
    assert res.rc == 1 and "invalid container id" in _one_line(res.err)


def test_unknown_container_and_signal(rt: Runtimes) -> None:
    res = rt.cmd("bkpy", "state", "nope")
    assert res.rc == 1 and _one_line(res.err) == "bkpy-runc: container nope does not exist"
    res = rt.cmd("bkpy", "kill", "nope", "SIGNOPE")
    assert res.rc == 1 and "unknown signal" in _one_line(res.err)


def test_log_file_records_errors_as_json(rt: Runtimes, tmp_path: object) -> None:
    log = os.path.join(str(tmp_path), "runc.log")
    res = subprocess.run([*BKPY_RUNC, "--root", rt.roots["bkpy"], "--log", log,
                          "--log-format", "json", "state", "missing"],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 1
    entry = json.loads(open(log).read())
    assert entry["level"] == "error" and entry["msg"] == "container missing does not exist"


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["run"], ["kill", "--bogus", "x"]])
def test_usage_errors_exit_2(argv: list[str]) -> None:
    res = subprocess.run([*BKPY_RUNC, *argv], capture_output=True, text=True, check=False)
    assert res.returncode == 2 and "usage: bkpy-runc" in res.stderr + res.stdout
    assert "Traceback" not in res.stderr


def test_version_through_console_script_and_module() -> None:
    script = os.path.join(os.path.dirname(sys.executable), "bkpy-runc")
    for argv in ([script] if os.path.exists(script) else []) + [[sys.executable, "-m",
                                                                 "bkpy_runc"]]:
        argv = argv if isinstance(argv, list) else [argv]
        res = subprocess.run([*argv, "--version"], capture_output=True, text=True, check=False)
        assert res.returncode == 0 and res.stdout.startswith("bkpy-runc version "), res
