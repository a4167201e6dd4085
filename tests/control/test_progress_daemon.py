"""The progress of a build through a bkpyd builder is the embedded builder's: the steps'
``inputs`` travel over gRPC (``--progress rawjson`` shows BuildKit's graph), and the
context transfers show BuildKit's byte counts, not bkpyd's own protocol's."""

from __future__ import annotations

import json
from pathlib import Path

from tests.control.conftest import MakeDaemon, client_env, import_busybox, run_bkpy
from tests.e2e.screens_cases import MULTI_STAGE, transfer_builds, write_transfer_context

SCREENS = Path(__file__).resolve().parents[2] / "testdata" / "screens"


def _graph(stderr: str) -> dict[str, frozenset[str]]:
    """Step name -> the names of its inputs, from rawjson records."""
    names: dict[str, str] = {}
    inputs: dict[str, list[str]] = {}
    for line in stderr.splitlines():
        for v in json.loads(line).get("vertexes", []):
            names[v["digest"]] = v["name"]
            if "inputs" in v:
                inputs[v["digest"]] = v["inputs"]
    # every input is a step of the same stream
    assert all(i in names for ins in inputs.values() for i in ins), (names, inputs)
    return {names[d]: frozenset(names[i] for i in inputs.get(d, [])) for d in names}


def test_rawjson_inputs_through_bkpyd_are_the_embedded_ones(
        tmp_path: Path, make_daemon: MakeDaemon, busybox_layout: Path) -> None:
    env = client_env(tmp_path, make_daemon())
    import_busybox(Path(env["BKPY_ROOT"]), busybox_layout)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(MULTI_STAGE.replace("{BASE}", "busybox"))
    (ctx / "a.txt").write_text("a\n")
    (ctx / "b.txt").write_text("b\n")
    out = ["-o", f"type=local,dest={tmp_path / 'out'}"]
    embedded = run_bkpy("build", "--builder", "default", "--progress", "rawjson", *out,
                        str(ctx), env=env)
    remote = run_bkpy("build", "--progress", "rawjson", *out, str(ctx), env=env)
    graph = _graph(remote.err)
    assert graph == _graph(embedded.err)
    # BuildKit's edges, multi-stage: a COPY reads its stage and the context
    assert graph["[one 1/2] COPY a.txt /a.txt"] == {"[base 2/2] RUN echo base > /base.txt",
                                                    "[internal] load build context"}
    assert graph["[stage-3 2/2] COPY --from=two /two.txt /two.txt"] == {
        "[stage-3 1/2] COPY --from=one /one.txt /one.txt", "[two 2/2] RUN cat /b.txt > /two.txt"}
    # and a fully cached rebuild sends them with its cached steps
    again = _graph(run_bkpy("build", "--progress", "rawjson", *out, str(ctx), env=env).err)
    assert again == graph


def test_transfer_steps_through_bkpyd_are_the_referees(
        tmp_path: Path, make_daemon: MakeDaemon) -> None:
    """As tests/e2e/test_progress_screens.py::test_plain_transfer_steps_are_the_referees,
    through a daemon: the client measures the Dockerfile, the daemon its copy of the
    context (synced with the client's modes and times), and bkpyd's own transfer step
    is gone."""
    env = client_env(tmp_path, make_daemon(busybox=False))
    ctx = tmp_path / "ctx"
    write_transfer_context(ctx)
    screens: list[str] = []

    def build(*args: str) -> str:
        out = ["-o", f"type=local,dest={tmp_path / 'out'}"]
        screens.append(run_bkpy("build", "--progress", "plain", *out, *args, str(ctx),
                                cwd=ctx, env=env).err)
        return screens[-1]

    expected = json.loads((SCREENS / "transfers.json").read_text())
    assert transfer_builds(ctx, build) == expected
    assert not any("[internal] transferring" in s for s in screens)
