"""Naming the context files behind a miss: per-path maps from the checksum walk."""

from __future__ import annotations

import json
from pathlib import Path

from buildkit_py.llb import ops_pb2
from buildkit_py.worker.checksum import (
    MANIFESTS_PER_SLOT,
    ChecksumCache,
    Checksummer,
    describe_manifest_change,
)
from buildkit_py.worker.ops.explain import (
    describe_exec_change,
    describe_image_change,
    exec_summary,
    image_summary,
)


def test_manifest_comes_from_the_walk_and_names_paths(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "src" / "sub").mkdir(parents=True)
    (ctx / "src" / "a.c").write_text("a")
    (ctx / "src" / "sub" / "b.c").write_text("b")
    (ctx / "README").write_text("r")
    cache = ChecksumCache(tmp_path / "sums.db")
    summer = Checksummer(cache, zero_owner=True, keep_trees=True)
    summer.selection(str(ctx), "/src")
    before = summer.manifest()
    assert set(before) == {"src", "src/a.c", "src/sub", "src/sub/b.c"}  # not README
    (ctx / "src" / "a.c").write_text("changed")
    (ctx / "src" / "new").mkdir()
    (ctx / "src" / "new" / "x").write_text("x")
    (ctx / "src" / "sub" / "b.c").unlink()
    summer = Checksummer(cache, zero_owner=True, keep_trees=True)
    summer.selection(str(ctx), "/src")
    after = summer.manifest()
    assert describe_manifest_change(before, after) == (
        "context files changed: src/a.c, src/new (added), src/sub/b.c (removed)")
    assert describe_manifest_change(before, before) is None
    one = dict(before, **{"src/a.c": "0" * 16})
    assert describe_manifest_change(before, one) == "context file src/a.c changed"
    many = {f"f{i}": "1" for i in range(7)}
    assert describe_manifest_change({}, many) == (
        "context files changed: f0 (added), f1 (added), f2 (added) and 4 more")
    cache.close()


def test_maps_are_stored_once_per_digest_and_few_per_slot(tmp_path: Path) -> None:
    cache = ChecksumCache(tmp_path / "sums.db")
    calls = []

    def build(n: int):  # type: ignore[no-untyped-def]
        def make() -> dict[str, str]:
            calls.append(n)
            return {"f": str(n)}
        return make

    cache.remember_manifest("slot", "sha256:1", build(1))
    cache.remember_manifest("slot", "sha256:1", build(1))  # known digest: not rebuilt
    assert calls == [1]
    assert cache.manifest("sha256:1") == {"f": "1"}
    for n in range(2, MANIFESTS_PER_SLOT + 3):
        cache.remember_manifest("slot", f"sha256:{n}", build(n))
    assert cache.manifest("sha256:1") is None  # the oldest went
    assert cache.manifest(f"sha256:{MANIFESTS_PER_SLOT + 2}") is not None
    cache.close()


def _run(args: list[str], env: list[str], platform: str = "amd64") -> ops_pb2.Op:
    op = ops_pb2.Op(platform=ops_pb2.Platform(os="linux", architecture=platform))
    op.exec.meta.args.extend(args)
    op.exec.meta.env.extend(env)
    op.exec.mounts.add(dest="/", input=0, output=0)
    return op


def test_exec_change_names_command_build_args_env_and_platform() -> None:
    desc = {"bkpy.args": "VERSION"}
    old = _run(["sh", "-c", "make"], ["PATH=/bin", "VERSION=1"])
    summary = json.dumps(exec_summary(old, desc))
    assert "=1" not in summary and "make" not in summary  # values only hashed
    assert describe_exec_change(_run(["sh", "-c", "make"], ["PATH=/bin", "VERSION=2"]),
                                desc, summary) == "build arg VERSION changed"
    assert describe_exec_change(_run(["sh", "-c", "make all"], ["PATH=/bin", "VERSION=1"]),
                                desc, summary) == "command changed"
    assert describe_exec_change(_run(["sh", "-c", "make"], ["PATH=/usr/bin", "VERSION=1"]),
                                desc, summary) == "env PATH changed"
    assert describe_exec_change(_run(["sh", "-c", "make"], ["PATH=/bin", "VERSION=1"],
                                     "arm64"), desc, summary) == (
        "platform linux/amd64 -> linux/arm64")
    assert describe_exec_change(old, desc, "not json") is None


def test_image_change_names_the_digests() -> None:
    old = image_summary("docker.io/library/alpine:3@sha256:" + "a" * 64,
                        "sha256:" + "a" * 64, "linux/amd64")
    new = image_summary("docker.io/library/alpine:3@sha256:" + "b" * 64,
                        "sha256:" + "b" * 64, "linux/amd64")
    assert describe_image_change(new, json.dumps(old)) == (
        "base image docker.io/library/alpine:3 digest sha256:aaaaaaaaaaaa -> "
        "sha256:bbbbbbbbbbbb")
