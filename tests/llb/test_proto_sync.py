"""Committed protobuf code matches what scripts/gen-proto.sh generates today."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gen-proto.sh"
_GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def _generate(out: Path, root: Path = REPO) -> dict[str, bytes]:
    subprocess.run(["bash", str(SCRIPT), str(out), str(root)], check=True, capture_output=True)
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name.endswith(_GENERATED_SUFFIXES)
    }


def test_committed_generated_code_is_in_sync_with_protos(tmp_path: Path) -> None:
    fresh = _generate(tmp_path)
    assert "buildkit_py/llb/ops_pb2.py" in fresh
    assert "buildkit_py/llb/ops_pb2.pyi" in fresh
    for rel, data in fresh.items():
        committed = REPO / rel
        assert committed.exists(), f"{rel} is not committed; run scripts/gen-proto.sh"
        assert committed.read_bytes() == data, f"{rel} is stale; run scripts/gen-proto.sh"
    # No generated file is left over from a proto that no longer exists.
    committed_generated = {
        str(p.relative_to(REPO))
        for p in (REPO / "buildkit_py").rglob("*")
        if p.name.endswith(_GENERATED_SUFFIXES)
    }
    assert committed_generated == set(fresh)


def test_script_adds_grpc_stubs_only_for_protos_with_a_service(tmp_path: Path) -> None:
    root = tmp_path / "src"
    pkg = root / "buildkit_py" / "demo"
    pkg.mkdir(parents=True)
    (pkg / "plain.proto").write_text(
        'syntax = "proto3";\npackage demo;\nmessage Ping { string text = 1; }\n'
    )
    (pkg / "svc.proto").write_text(
        'syntax = "proto3";\npackage demo;\nimport "buildkit_py/demo/plain.proto";\n'
        "service Echo {\n  rpc Say(Ping) returns (Ping);\n}\n"
    )
    out = tmp_path / "out"
    files = _generate(out, root)
    assert set(files) == {
        "buildkit_py/demo/plain_pb2.py",
        "buildkit_py/demo/plain_pb2.pyi",
        "buildkit_py/demo/svc_pb2.py",
        "buildkit_py/demo/svc_pb2.pyi",
        "buildkit_py/demo/svc_pb2_grpc.py",
    }
    assert b"from buildkit_py.demo import plain_pb2" in files["buildkit_py/demo/svc_pb2.py"]
    assert b"class EchoStub" in files["buildkit_py/demo/svc_pb2_grpc.py"]
