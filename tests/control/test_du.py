"""``bkpy du`` / ``bkpy prune`` on the embedded default builder (remote: test_crash_recovery)."""

from __future__ import annotations

from pathlib import Path

from tests.control.conftest import client_env, run_bkpy


def test_du_and_prune_on_the_embedded_builder(tmp_path: Path) -> None:
    env = client_env(tmp_path)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY busybox /bin/busybox\n"
                                    "COPY a.txt /a.txt\n")
    (ctx / "busybox").write_bytes(Path("/var/cache/bkpy-test/busybox-amd64").read_bytes())
    (ctx / "a.txt").write_text("a\n")
    run_bkpy("build", "--progress", "quiet", "--iidfile", str(tmp_path / "iid"), str(ctx),
             env=env)
    du = run_bkpy("du", env=env).out
    assert "snap:" in du and "Total:" in du
    verbose = run_bkpy("du", "--verbose", env=env).out
    assert "Description:  [2/2] COPY a.txt /a.txt" in verbose

    kept = run_bkpy("prune", "-f", "--filter", "until=1h", env=env).out
    assert "Total:" in kept
    assert "snap:" in run_bkpy("du", env=env).out  # used within the hour: kept

    assert run_bkpy("prune", "--filter", "nosuch=x", "-f", env=env, check=False).code == 2
    run_bkpy("prune", "-f", "--all", env=env)
    after = run_bkpy("du", env=env).out
    assert "snap:" not in after
    run_bkpy("build", "--progress", "quiet", str(ctx), env=env)  # the state is still usable
