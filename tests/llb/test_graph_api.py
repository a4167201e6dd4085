"""The fluent graph API: the graphs it builds, what states carry, dedup, input errors."""

from __future__ import annotations

import json

import pytest

from buildkit_py import llb
from buildkit_py.errors import UserError
from buildkit_py.llb import ops_pb2

AMD64 = "linux/amd64"


def _marshal(st: llb.State, platform: str | None = None) -> llb.Definition:
    """Marshal and prove the output passes full validation when loaded back."""
    d = st.marshal(platform)
    loaded = llb.Definition.from_bytes(d.to_bytes())
    assert loaded.digests() == d.digests() and loaded.head_digest == d.head_digest
    return d


def _by_kind(d: llb.Definition, kind: str) -> list[llb.Vertex]:
    return [v for v in d.vertices() if v.kind == kind]


def test_multi_stage_build_has_expected_shape() -> None:
    df = llb.SourceFile("Dockerfile", b"...")
    ctx = llb.local("context", exclude=["node_modules"])
    builder = (
        llb.image("golang:1.22", platform=AMD64, description="FROM golang")
        .dir("/src")
        .file(llb.copy(ctx, ".", ".", dir_copy_contents=True, follow_symlinks=True),
              description="COPY . .")
        .run(["go", "build", "-o", "/out/app"],
             mounts=[llb.cache_mount("/root/.cache/go-build", "gobuild", sharing="locked")],
             description="RUN go build", location=df.location(4, 5))
        .root()
    )
    final = (
        llb.image("alpine:3.20", platform=AMD64)
        .file(llb.copy(builder, "/out/app", "/usr/bin/app"), description="COPY --from")
        .run(["app", "--selftest"]).root()
    )
    d = _marshal(final)

    assert [v.kind for v in d.vertices()].count("source") == 3
    assert len(_by_kind(d, "exec")) == 2
    assert len(_by_kind(d, "file")) == 2
    head = d.vertex(d.head_digest or "")
    assert head.kind == "exec" and head.op.exec.meta.args == ["app", "--selftest"]

    sources = {v.op.source.identifier: v for v in _by_kind(d, "source")}
    assert set(sources) == {
        "docker-image://docker.io/library/golang:1.22",
        "docker-image://docker.io/library/alpine:3.20",
        "local://context",
    }
    assert json.loads(sources["local://context"].op.source.attrs["local.excludepatterns"]) == [
        "node_modules"]
    # The final stage's COPY reads the builder's exec output as secondary input.
    [go_build] = [v for v in _by_kind(d, "exec") if v.op.exec.meta.args[0] == "go"]
    copy_from = next(v for v in _by_kind(d, "file") if v.name == "COPY --from")
    action = copy_from.op.file.actions[0]
    assert copy_from.op.inputs[action.secondary_input].digest == go_build.digest
    assert action.copy.src == "/out/app" and action.copy.dest == "/usr/bin/app"
    assert d.locations(go_build.digest)[0].start_line == 4
    assert go_build.op.exec.meta.cwd == "/src"
    [root_mount, cache] = go_build.op.exec.mounts
    assert (root_mount.dest, root_mount.output, cache.output) == ("/", 0, -1)
    assert cache.mount_type == ops_pb2.MOUNT_TYPE_CACHE and cache.input == -1
    assert (cache.cache_opt.id, cache.cache_opt.sharing) == ("gobuild",
                                                             ops_pb2.CACHE_SHARING_LOCKED)


def test_identical_ops_built_twice_become_one_vertex() -> None:
    def stage() -> llb.State:
        return llb.image("alpine", platform=AMD64).run(["apk", "add", "git"]).root()

    a, b = stage(), stage()
    assert a.output is not None and b.output is not None
    assert a.output.node is not b.output.node
    d = _marshal(llb.merge([a, b.file(llb.mkfile("/x", data="1"))]))
    assert len(_by_kind(d, "source")) == 1
    assert len(_by_kind(d, "exec")) == 1
    [m] = _by_kind(d, "merge")
    assert len(m.op.inputs) == 2


def test_duplicate_vertices_merge_their_metadata() -> None:
    a = llb.image("alpine", platform=AMD64, description="first")
    b = llb.image("alpine", platform=AMD64, description={"other": "x"})
    d = _marshal(llb.merge([a.run(["a"]).root(), b.run(["b"]).root()]))
    [src] = _by_kind(d, "source")
    assert dict(src.metadata.description) == {"llb.customname": "first", "other": "x"}


def test_state_values_flow_into_exec_meta() -> None:
    st = (
        llb.image("alpine", platform=AMD64)
        .add_env("PATH", "/usr/bin:/bin").add_env("A", "1").add_env("PATH", "/opt/bin")
        .dir("/app").dir("sub").user("nobody").network("none").hostname("h")
        .add_extra_host("db", "10.0.0.5")
    )
    assert st.env_list() == ["PATH=/opt/bin", "A=1"]
    assert st.get_dir() == "/app/sub"
    ex = st.run(["sh", "-c", "id"], env={"B": "2"}, security="insecure").root()
    d = _marshal(ex)
    op = d[d.head_digest or ""].exec
    assert list(op.meta.env) == ["PATH=/opt/bin", "A=1", "B=2"]
    assert (op.meta.cwd, op.meta.user, op.meta.hostname) == ("/app/sub", "nobody", "h")
    assert [(h.host, h.ip) for h in op.meta.extra_hosts] == [("db", "10.0.0.5")]
    assert op.network == ops_pb2.NET_MODE_NONE
    assert op.security == ops_pb2.SECURITY_MODE_INSECURE
    # The run's own overrides stay with its result.
    assert ex.get_env("B") == "2" and st.get_env("B") is None


def test_string_command_is_split_like_a_shell() -> None:
    d = _marshal(llb.scratch().run("echo 'a b' c").root(), AMD64)
    assert list(d[d.head_digest or ""].exec.meta.args) == ["echo", "a b", "c"]


def test_writable_mount_is_an_output_and_readonly_is_not() -> None:
    base = llb.image("alpine", platform=AMD64)
    ctx = llb.local("context")
    es = base.run(
        ["make"],
        mounts=[
            llb.bind_mount("/src", ctx, selector="app", readonly=True),
            llb.bind_mount("out", None),  # relative: resolved against the cwd "/"
            llb.tmpfs_mount("/tmp", size=1 << 20),
            llb.secret_mount("/run/secrets/tok", "tok", optional=True),
            llb.ssh_mount("/run/ssh"),
        ],
        secret_env=[llb.SecretEnv("tok", "TOKEN")],
    )
    out = es.get_mount("/out")
    d = _marshal(out)
    assert d.head is not None and d.head.index == 1
    op = d[d.head.digest].exec
    by_dest = {m.dest: m for m in op.mounts}
    assert [m.dest for m in op.mounts] == sorted(by_dest)
    assert by_dest["/"].output == 0 and by_dest["/out"].output == 1
    assert by_dest["/out"].input == -1
    assert by_dest["/src"].output == -1 and by_dest["/src"].selector == "app"
    assert by_dest["/tmp"].tmpfs_opt.size == 1 << 20
    assert by_dest["/run/secrets/tok"].secret_opt.optional
    assert by_dest["/run/ssh"].ssh_opt.id == "default"
    assert [(s.id, s.name) for s in op.secretenv] == [("tok", "TOKEN")]
    with pytest.raises(llb.LLBError, match="no writable mount at /src"):
        es.get_mount("/src")


def test_two_mounts_at_one_target_are_rejected() -> None:
    with pytest.raises(UserError, match="two mounts at /a"):
        llb.scratch().run(["x"], mounts=[llb.tmpfs_mount("/a"), llb.tmpfs_mount("/a/")])


def test_file_chain_indices_and_relative_paths() -> None:
    src = llb.local("context").dir("/ctx")
    st = llb.image("alpine", platform=AMD64).dir("/app").file(
        llb.mkdir("conf", 0o700, make_parents=True, owner="app:staff")
        .mkfile("conf/x", data="hello", owner=1000)
        .copy(src, "a.txt", "data/", mode="u+x", create_dest_path=True)
        .symlink("../conf", "link")
        .rm("tmp", allow_not_found=True)
    )
    d = _marshal(st)
    op = d[d.head_digest or ""]
    acts = op.file.actions
    n = len(op.inputs)
    assert n == 2
    assert [a.WhichOneof("action") for a in acts] == ["mkdir", "mkfile", "copy", "symlink", "rm"]
    assert acts[0].input == 0
    assert [a.input for a in acts[1:]] == [n, n + 1, n + 2, n + 3]
    assert [a.output for a in acts] == [-1, -1, -1, -1, 0]
    assert acts[2].secondary_input == 1 and acts[0].secondary_input == -1
    assert acts[0].mkdir.path == "/app/conf" and acts[0].mkdir.mode == 0o700
    assert acts[0].mkdir.owner.user.by_name.name == "app"
    assert acts[0].mkdir.owner.group.by_name.input == 0
    assert acts[1].mkfile.data == b"hello" and acts[1].mkfile.owner.user.by_id == 1000
    assert (acts[2].copy.src, acts[2].copy.dest) == ("/ctx/a.txt", "/app/data/")
    assert (acts[2].copy.mode, acts[2].copy.mode_str) == (-1, "u+x")
    assert (acts[3].symlink.oldpath, acts[3].symlink.newpath) == ("../conf", "/app/link")
    assert acts[4].rm.path == "/app/tmp" and acts[4].rm.allow_not_found


def test_copy_mode_forms() -> None:
    ctx = llb.local("c")
    assert llb.copy(ctx, "a", "/b", mode="755").body.mode == 0o755  # type: ignore[union-attr]
    assert llb.copy(ctx, "a", "/b", mode=0o644).body.mode == 0o644  # type: ignore[union-attr]
    with pytest.raises(llb.LLBError, match="invalid file mode"):
        llb.copy(ctx, "a", "/b", mode="rwx")


def test_merge_and_diff_shapes() -> None:
    base = llb.image("alpine", platform=AMD64)
    built = base.run(["make"]).root()
    changes = llb.diff(base, built)
    merged = llb.merge([llb.image("busybox", platform=AMD64), changes])
    d = _marshal(merged)
    [m] = _by_kind(d, "merge")
    [df] = _by_kind(d, "diff")
    assert m.digest == d.head_digest
    assert [m.op.inputs[i.input].digest for i in m.op.merge.inputs][1] == df.digest
    lower = df.op.inputs[df.op.diff.lower.input].digest
    upper = df.op.inputs[df.op.diff.upper.input].digest
    assert d.vertex(lower).kind == "source" and d.vertex(upper).kind == "exec"


def test_file_op_on_scratch_has_no_inputs() -> None:
    d = _marshal(llb.scratch().file(llb.mkdir("/x").mkfile("/x/y")), AMD64)
    op = d[d.head_digest or ""]
    assert len(op.inputs) == 0
    assert [a.input for a in op.file.actions] == [-1, 0]


def test_merge_and_diff_shortcuts() -> None:
    a = llb.image("alpine", platform=AMD64)
    assert llb.merge([]).is_scratch
    assert llb.merge([llb.scratch(), a]).output is a.output
    assert llb.diff(llb.scratch(), a) is a


def test_image_references_are_normalised() -> None:
    cases = {
        "alpine": "docker.io/library/alpine:latest",
        "user/app:1.0": "docker.io/user/app:1.0",
        "localhost:5000/x/y": "localhost:5000/x/y:latest",
        "ghcr.io/o/r@sha256:" + "a" * 64: "ghcr.io/o/r@sha256:" + "a" * 64,
        "index.docker.io/library/busybox:1.36": "docker.io/library/busybox:1.36",
    }
    for ref, want in cases.items():
        assert llb.normalize_image_ref(ref) == want
    with pytest.raises(UserError, match="invalid image reference"):
        llb.image("Bad/Name")


def test_http_and_git_sources() -> None:
    h = llb.http("https://example.com/a.tgz", checksum="sha256:" + "b" * 64, filename="a.tgz",
                 chmod=0o755)
    d = _marshal(h, AMD64)
    src = d[d.head_digest or ""]
    assert src.source.identifier == "https://example.com/a.tgz"
    assert dict(src.source.attrs) == {"http.checksum": "sha256:" + "b" * 64,
                                      "http.filename": "a.tgz", "http.perm": "0755"}
    assert not src.HasField("platform")
    g = llb.git("https://github.com/o/r.git", "v1", subdir="docs", keep_git_dir=True)
    gd = _marshal(g, AMD64)
    gsrc = gd[gd.head_digest or ""].source
    assert gsrc.identifier == "git://github.com/o/r.git#v1:docs"
    assert gsrc.attrs["git.fullurl"] == "https://github.com/o/r.git"
    assert gsrc.attrs["git.keepgitdir"] == "true"
    ssh = _marshal(llb.git("git@github.com:o/r.git"), AMD64)
    assert ssh[ssh.head_digest or ""].source.identifier == "git://github.com/o/r.git"


def test_marshal_platform_fills_ops_built_without_one() -> None:
    st = llb.image("alpine").run(["true"]).root()
    d = _marshal(st, "linux/arm64")
    for v in d.vertices():
        assert llb.format_platform(v.op.platform) == "linux/arm64"
    pinned = _marshal(llb.image("alpine", platform="linux/arm/v7"), "linux/arm64")
    assert llb.format_platform(pinned[pinned.head_digest or ""].platform) == "linux/arm/v7"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: llb.scratch().network("bridge"), "invalid network mode"),
        (lambda: llb.scratch().security("root"), "invalid security mode"),
        (lambda: llb.cache_mount("/c", "id", sharing="all"), "invalid cache sharing"),
        (lambda: llb.parse_platform("linux"), "invalid platform"),
        (lambda: llb.scratch().run([]), "run needs a command"),
        (lambda: llb.http("ftp://x/y"), "only http"),
        (lambda: llb.scratch().add_env("A=B", "1"), "invalid environment variable"),
        (lambda: llb.source_location("Dockerfile", (3, 2)), "invalid line range"),
    ],
)
def test_bad_arguments_raise_user_errors(call: object, message: str) -> None:
    with pytest.raises(UserError, match=message):
        call()  # type: ignore[operator]


def test_long_chain_marshals_without_recursion_limit() -> None:
    st = llb.image("alpine", platform=AMD64)
    for i in range(3000):
        st = st.run(["step", str(i)]).root()
    d = _marshal(st)
    assert len(d) == 3001
