"""create/start/state/kill/delete/list behave like runc's."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from .conftest import Runtimes

LOOP = "trap 'echo got-term; exit 0' TERM; while true; do sleep 0.05; done"


def _status(rt: Runtimes, runtime: str, cid: str) -> str:
    res = rt.cmd(runtime, "state", cid)
    return json.loads(res.out)["status"] if res.rc == 0 else "gone"


def _wait_status(rt: Runtimes, runtime: str, cid: str, want: str) -> str:
    deadline = time.monotonic() + 15
    status = _status(rt, runtime, cid)
    while status != want and time.monotonic() < deadline:
        time.sleep(0.05)
        status = _status(rt, runtime, cid)
    return status


def _create(rt: Runtimes, runtime: str, bundle: str, cid: str, log: str, *extra: str) -> None:
    # The container keeps create's stdio: give it a file so nothing blocks on a pipe.
    with open(log, "w") as out:
        proc = subprocess.run([*rt.argv(runtime), "create", *extra, "--bundle", bundle, cid],
                              stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              timeout=30, check=False)
    assert proc.returncode == 0, open(log).read()


@pytest.mark.parametrize("runtime", ["bkpy", "runc"])
def test_lifecycle_statuses_and_kill_term(rt: Runtimes, runtime: str, tmp_path: object) -> None:
    bundle = rt.bundle(["sh", "-c", LOOP])
    cid = f"life-{runtime}-{os.getpid()}"
    log = os.path.join(str(tmp_path), "out.log")
    pid_file = os.path.join(str(tmp_path), "pid")
    _create(rt, runtime, bundle, cid, log, "--pid-file", pid_file)
    state = json.loads(rt.cmd(runtime, "state", cid).out)
    assert state["status"] == "created" and state["id"] == cid
    assert state["bundle"] == bundle and state["pid"] == int(open(pid_file).read())
    assert rt.cmd(runtime, "start", cid).rc == 0
    assert _status(rt, runtime, cid) == "running"
    assert rt.cmd(runtime, "delete", cid).rc != 0  # running: needs --force
    assert rt.cmd(runtime, "kill", cid, "TERM").rc == 0
    assert _wait_status(rt, runtime, cid, "stopped") == "stopped"
    assert json.loads(rt.cmd(runtime, "state", cid).out)["pid"] == 0
    assert rt.cmd(runtime, "delete", cid).rc == 0
    assert _status(rt, runtime, cid) == "gone"
    assert open(log).read() == "got-term\n"


@pytest.mark.parametrize("runtime", ["bkpy", "runc"])
def test_kill_created_container_stops_it(rt: Runtimes, runtime: str, tmp_path: object) -> None:
    bundle = rt.bundle(["sh", "-c", "echo should-not-run"])
    cid = f"created-{runtime}-{os.getpid()}"
    log = os.path.join(str(tmp_path), "out.log")
    _create(rt, runtime, bundle, cid, log)
    assert rt.cmd(runtime, "kill", cid, "SIGTERM").rc == 0
    assert _wait_status(rt, runtime, cid, "stopped") == "stopped"
    assert rt.cmd(runtime, "start", cid).rc != 0
    assert rt.cmd(runtime, "kill", cid, "KILL").rc != 0  # not running any more
    assert rt.cmd(runtime, "delete", cid).rc == 0
    assert open(log).read() == ""


@pytest.mark.parametrize("runtime", ["bkpy", "runc"])
def test_delete_force_kills_running_container(rt: Runtimes, runtime: str) -> None:
    bundle = rt.bundle(["sleep", "60"])
    cid = f"force-{runtime}-{os.getpid()}"
    assert rt.cmd(runtime, "run", "--detach", "--bundle", bundle, cid,
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).rc == 0
    pid = json.loads(rt.cmd(runtime, "state", cid).out)["pid"]
    assert _status(rt, runtime, cid) == "running" and os.path.exists(f"/proc/{pid}")
    assert rt.cmd(runtime, "delete", "--force", cid).rc == 0
    assert _status(rt, runtime, cid) == "gone"


def test_list_state_and_annotations(rt: Runtimes, tmp_path: object) -> None:
    bundle = rt.bundle(["sleep", "60"], annotations={"org.example/key": "value"})
    cid = f"list-{os.getpid()}"
    _create(rt, "bkpy", bundle, cid, os.path.join(str(tmp_path), "log"))
    state = json.loads(rt.cmd("bkpy", "state", cid).out)
    assert {k: state[k] for k in ("ociVersion", "id", "status", "bundle", "annotations")} == {
        "ociVersion": "1.0.2-dev", "id": cid, "status": "created", "bundle": bundle,
        "annotations": {"org.example/key": "value"}}
    assert rt.cmd("bkpy", "list", "-q").out == cid + "\n"
    table = rt.cmd("bkpy", "list").out.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert table[1].split()[:4] == [cid, str(state["pid"]), "created", bundle]
    listed = json.loads(rt.cmd("bkpy", "list", "--format", "json").out)
    assert [c["id"] for c in listed] == [cid]
    assert rt.cmd("bkpy", "delete", cid).rc == 0  # created (never started): no --force needed
    assert rt.cmd("bkpy", "list", "-q").out == ""


def test_hooks_run_with_state_on_stdin(rt: Runtimes, tmp_path: object) -> None:
    out_dir = str(tmp_path)
    hooks = {
        kind: [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {out_dir}/{kind}.json"]}]
        for kind in ("prestart", "createRuntime", "createContainer", "poststart", "poststop")
    }
    # startContainer runs inside the container: its path and output live in the rootfs.
    hooks["startContainer"] = [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /tmp/sc.json"]}]
    bundle = rt.bundle(["sh", "-c", "cat /tmp/sc.json; rm /tmp/sc.json"], hooks=hooks)
    res = rt.run("bkpy", bundle)
    assert res.rc == 0, res
    assert json.loads(res.out)["status"] == "running"
    seen = {}
    for kind in ("prestart", "createRuntime", "createContainer", "poststart", "poststop"):
        with open(os.path.join(out_dir, f"{kind}.json")) as f:
            seen[kind] = json.load(f)
    assert {k: v["status"] for k, v in seen.items()} == {
        "prestart": "creating", "createRuntime": "creating", "createContainer": "created",
        "poststart": "running", "poststop": "stopped"}
    assert len({v["id"] for v in seen.values()}) == 1 and seen["poststart"]["pid"] > 0
    assert seen["createRuntime"]["bundle"] == bundle


def test_failing_create_runtime_hook_aborts_cleanly(rt: Runtimes) -> None:
    hooks = {"createRuntime": [{"path": "/bin/false"}]}
    res = rt.run("bkpy", rt.bundle(["echo", "never"], hooks=hooks))
    assert res.rc == 1 and res.out == ""
    assert res.err == "bkpy-runc: createRuntime hook /bin/false: exit status 1\n"


def test_failing_poststart_hook_only_warns(rt: Runtimes) -> None:
    hooks = {"poststart": [{"path": "/bin/false"}]}
    res = rt.run("bkpy", rt.bundle(["sh", "-c", "echo ran; exit 5"], hooks=hooks))
    assert (res.rc, res.out) == (5, "ran\n")
    assert res.err == "bkpy-runc: warning: poststart hook /bin/false: exit status 1\n"
