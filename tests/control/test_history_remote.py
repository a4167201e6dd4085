"""``bkpy history`` against a remote bkpyd: the daemon records the builds, the client
lists, inspects, reads whole logs, exports and removes them over the History RPC."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildkit_py.client.remote import RemoteClient
from buildkit_py.errors import UserError
from tests.control.conftest import MakeDaemon, client_env, run_bkpy

DOCKERFILE = """\
FROM busybox:latest
RUN echo remote-line-1 && echo remote-line-2
RUN echo failing-here >&2 && exit 2
"""


def test_a_remote_daemons_history(tmp_path: Path, make_daemon: MakeDaemon) -> None:
    daemon = make_daemon()
    env = client_env(tmp_path, daemon)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    assert run_bkpy("build", "--network", "none", str(ctx), env=env, check=False).code == 1

    (record,) = json.loads(run_bkpy("history", "ls", "--format", "json", env=env).out)
    assert record["status"] == "failed" and "exit code: 2" in record["error"]
    shown = run_bkpy("history", "inspect", env=env).out
    assert "Failed step:" in shown and "Failed" in shown
    assert "exit 2" in json.loads(run_bkpy("history", "inspect", "--format", "json",
                                           env=env).out)["dockerfile"]
    step = next(s for s in record["steps"] if "remote-line-1" in s["name"])
    assert run_bkpy("history", "logs", "--step", str(step["index"]), env=env).out == \
        "remote-line-1\nremote-line-2\n"
    replay = run_bkpy("history", "logs", env=env).out
    assert "failing-here" in replay and "ERROR" in replay

    bundle = tmp_path / "b.tar.gz"
    run_bkpy("history", "export", "-o", str(bundle), env=env)
    local = {"BKPY_CONFIG": str(tmp_path / "client2"), "BKPY_ROOT": str(tmp_path / "local")}
    assert run_bkpy("history", "import", str(bundle), env=local).out.strip() == record["ref"]
    refused = run_bkpy("history", "import", str(bundle), env=env, check=False)
    assert refused.code == 2 and "cannot be imported" in refused.err

    run_bkpy("history", "rm", record["ref"][:10], env=env)
    assert json.loads(run_bkpy("history", "ls", "--format", "json", env=env).out) == []


def test_the_rpc_reads_nothing_outside_a_builds_folder(make_daemon: MakeDaemon) -> None:
    client = RemoteClient(make_daemon(busybox=False).endpoint)
    try:
        for ref, path in (("../../../../etc", "record.json"), ("a" * 25, "../../x"),
                          ("a" * 25, "/etc/passwd")):
            with pytest.raises(UserError):
                list(client.history("read", ref, path))
    finally:
        client.close()
