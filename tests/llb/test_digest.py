"""Vertex digests: stable across processes, insensitive to map order, sensitive to env order."""

from __future__ import annotations

import subprocess
import sys

from buildkit_py import llb
from buildkit_py.llb import ops_pb2

_GRAPH_SCRIPT = """
from buildkit_py import llb
ctx = llb.local("context", include=["src", "go.mod"], exclude=["*.md"], shared_key="k")
st = (llb.image("golang:1.22", platform="linux/amd64").add_env("A", "1").dir("/src")
      .file(llb.copy(ctx, ".", ".", dir_copy_contents=True, owner="1000:1000"))
      .run(["go", "build"], mounts=[llb.cache_mount("/root/.cache", "go")]).root())
print(st.marshal().head_digest)
"""


def _run_digest_in_subprocess() -> str:
    out = subprocess.run(
        [sys.executable, "-c", _GRAPH_SCRIPT],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
    )
    return out.stdout.strip()


def test_graph_digest_is_identical_in_another_process() -> None:
    here: dict[str, object] = {}
    exec(_GRAPH_SCRIPT.replace("print(", "result = ("), here)
    other = _run_digest_in_subprocess()
    assert other.startswith("sha256:") and len(other) == 7 + 64
    assert here["result"] == other


def test_source_attrs_insertion_order_does_not_change_digest() -> None:
    a = ops_pb2.Op()
    a.source.identifier = "local://context"
    for k in ("local.includepattern", "local.excludepatterns", "local.sharedkeyhint"):
        a.source.attrs[k] = k.upper()
    b = ops_pb2.Op()
    b.source.identifier = "local://context"
    for k in ("local.sharedkeyhint", "local.excludepatterns", "local.includepattern"):
        b.source.attrs[k] = k.upper()
    assert llb.digest_op(a) == llb.digest_op(b)


def test_metadata_map_order_does_not_change_definition_bytes() -> None:
    def build(keys: list[str]) -> bytes:
        st = llb.image("alpine", platform="linux/amd64")
        desc = {k: k * 2 for k in keys}
        return st.run(["true"], description=desc).root().marshal().to_bytes()

    assert build(["b", "a", "c"]) == build(["c", "b", "a"])


def test_env_order_changes_digest() -> None:
    base = llb.image("alpine", platform="linux/amd64")
    ab = base.add_env("A", "1").add_env("B", "2").run(["env"]).root().marshal()
    ba = base.add_env("B", "2").add_env("A", "1").run(["env"]).root().marshal()
    assert ab.head_digest != ba.head_digest


def test_digest_is_sha256_of_the_serialised_op_bytes() -> None:
    d = llb.image("alpine", platform="linux/amd64").marshal()
    raw = d.proto.def_[0]
    assert llb.digest_bytes(raw) == d.head_digest
    assert llb.digest_op(d[d.head_digest or ""]) == d.head_digest


def test_platform_is_part_of_image_digest() -> None:
    amd = llb.image("alpine", platform="linux/amd64").marshal()
    arm = llb.image("alpine", platform="linux/arm64").marshal()
    assert amd.head_digest != arm.head_digest


def test_platform_does_not_split_local_context() -> None:
    ctx = llb.local("context")
    assert ctx.marshal("linux/amd64").head_digest == ctx.marshal("linux/arm64").head_digest
