"""Shape of the LLB graph: ops, mounts, env, names, cache flags (reference §2, §4)."""

from __future__ import annotations

import json

import pytest

from buildkit_py.errors import DockerfileError
from buildkit_py.llb import ops_pb2
from tests.convert.helpers import build, env_of, exec_with, execs, names, vertices


def test_run_shell_and_exec_form_args_env_cwd_user() -> None:
    res = build('FROM base\nENV A=1\nWORKDIR /src\nUSER 1000\nRUN echo "$A"\n'
                'RUN ["/bin/true", "x"]\n')
    shell = exec_with(res, 'echo "$A"')
    assert list(shell.op.exec.meta.args) == ["/bin/sh", "-c", 'echo "$A"']
    assert env_of(shell)["A"] == "1"
    assert shell.op.exec.meta.cwd == "/src"
    assert shell.op.exec.meta.user == "1000"
    exec_form = exec_with(res, "x")
    assert list(exec_form.op.exec.meta.args) == ["/bin/true", "x"]


def test_op_counts_and_single_stage_vertex_names() -> None:
    res = build("FROM base\nWORKDIR /app\nCOPY . .\nRUN make\nENV X=1\nRUN make install\n")
    assert len(execs(res)) == 2
    assert len(vertices(res, "file")) == 2
    assert names(res) == [
        names(res)[0],  # the FROM, checked below
        "[2/5] WORKDIR /app",
        "[internal] load build context",
        "[3/5] COPY . .",
        "[4/5] RUN make",
        "[5/5] RUN make install",
    ]
    assert names(res)[0].startswith("[1/5] FROM docker.io/library/base:latest@sha256:")


def test_multi_stage_names_and_padding() -> None:
    text = "FROM scratch AS build\n" + "RUN x\n" * 10 + "FROM base\nCOPY --from=build / /\n"
    got = names(build(text))
    assert "[build  1/10] RUN x" in got and "[build 10/10] RUN x" in got
    assert any(n.startswith("[stage-1 2/2] COPY --from=build / /") for n in got)


def test_multi_platform_names_have_platform_prefix() -> None:
    got = names(build("FROM scratch AS b\nRUN x\nFROM b\nRUN y\n", multi_platform=True))
    assert got == ["[linux/amd64 b 1/1] RUN x", "[linux/amd64 stage-1 1/1] RUN y"]


def test_run_name_expands_env_but_masks_nothing_else() -> None:
    got = names(build("FROM scratch\nARG V=1.2\nRUN echo $V $UNSET 'q'\n"))
    assert got == ["[1/1] RUN echo 1.2 $UNSET 'q'"]


def test_copy_from_context_uses_local_with_follow_paths_and_excludes() -> None:
    res = build("FROM scratch\nCOPY src/ /src/\nADD *.txt /\nRUN --mount=source=cfg,target=/c x\n",
                ignore_patterns=["*.md", "!README.md"], context_name="ctx")
    (local,) = [v for v in vertices(res, "source") if v.op.source.identifier.startswith("local")]
    attrs = local.op.source.attrs
    assert local.op.source.identifier == "local://ctx"
    assert json.loads(attrs["local.followpaths"]) == ["*.txt", "cfg", "src"]
    assert json.loads(attrs["local.excludepatterns"]) == ["*.md", "!README.md"]
    assert not local.op.HasField("platform")


def test_copy_options_chown_chmod_parents_exclude() -> None:
    res = build("FROM base\nWORKDIR /w\nCOPY --chown=app:grp --chmod=0640 --exclude=*.o "
                "a b sub/\nCOPY --parents ./x/./y/*.txt /d/\nCOPY --chmod=u+x s /s\n")
    files = [v for v in vertices(res, "file") if v.op.file.actions[0].HasField("copy")]
    first = files[0].op.file.actions
    assert [a.copy.src for a in first] == ["/a", "/b"]
    assert {a.copy.dest for a in first} == {"/w/sub/"}
    c = first[0].copy
    assert c.mode == 0o640 and c.follow_symlink and c.dir_copy_contents and c.allow_wildcard
    assert c.create_dest_path and c.attempt_unpack_docker_compatibility is False
    assert list(c.exclude_patterns) == ["*.o"]
    assert c.owner.user.by_name.name == "app" and c.owner.group.by_name.name == "grp"
    parents = files[1].op.file.actions[0].copy
    assert parents.src == "/x" and list(parents.include_patterns) == ["y/*.txt"]
    assert not parents.parents and not parents.required_paths  # a wildcard: nothing required
    assert files[2].op.file.actions[0].copy.mode_str == "u+x"


def test_copy_several_sources_without_directory_destination() -> None:
    # The newest BuildKit accepts it: each source is copied to /dest in turn.
    files = vertices(build("FROM scratch\n\nCOPY a b /dest\n"), "file")
    dests = [a.copy.dest for f in files for a in f.op.file.actions]
    assert dests == ["/dest", "/dest"]


@pytest.mark.parametrize(("chmod", "message"), [
    ("9", "invalid chmod parameter"), ("88888", "invalid chmod parameter"),
    ("abc", "invalid syntax"),  # not numeric: BuildKit's symbolic-mode parser's error
])
def test_invalid_chmod(chmod: str, message: str) -> None:
    with pytest.raises(DockerfileError, match=message):
        build(f"FROM scratch\nCOPY --chmod={chmod} a /a\n")


def test_copy_link_is_a_merge_and_chmod_disables_it() -> None:
    res = build("FROM base\nCOPY --link a /a\nCOPY --link --chmod=755 b /b\n")
    (merge,) = vertices(res, "merge")
    assert len(merge.op.merge.inputs) == 2
    assert merge.name.startswith("[2/3] LINK COPY --link a /a")
    layer = res.definition[merge.op.inputs[1].digest]
    assert layer.file.actions[0].input == -1  # copied into scratch
    assert len(vertices(res, "file")) == 2  # the link layer + the plain --chmod copy


def test_copy_heredoc_source_is_expanded_unless_quoted() -> None:
    res = build('FROM scratch\nARG N=world\nCOPY <<EOF <<"RAW" /out/\nhello $N\nEOF\n$N\nRAW\n')
    mkfiles = {a.mkfile.path: a.mkfile for v in vertices(res, "file")
               for a in v.op.file.actions if a.HasField("mkfile")}
    assert mkfiles["/EOF"].data == b"hello world\n" and mkfiles["/EOF"].mode == 0o644
    assert mkfiles["/RAW"].data == b"$N\n"


def test_add_url_git_and_local_archive() -> None:
    res = build("FROM scratch\nADD --checksum=sha256:" + "a" * 64
                + " https://example.com/f.tgz /dl/\n"
                "ADD --keep-git-dir https://github.com/x/y.git#v1:sub /src\nADD a.tar /x/\n")
    sources = {v.op.source.identifier: v.op.source.attrs for v in vertices(res, "source")}
    http = sources["https://example.com/f.tgz"]
    assert http["http.filename"] == "f.tgz" and http["http.checksum"].endswith("a" * 64)
    assert http["http.perm"] == "0600"
    git = sources["git://github.com/x/y.git#v1:sub"]
    assert git["git.keepgitdir"] == "true"
    copies = [a.copy for v in vertices(res, "file") for a in v.op.file.actions]
    assert copies[0].src == "/f.tgz" and not copies[0].attempt_unpack_docker_compatibility
    assert copies[2].attempt_unpack_docker_compatibility


@pytest.mark.parametrize("src", ["https://example.com/x", "git@github.com:a/b.git"])
def test_copy_rejects_urls_and_git(src: str) -> None:
    with pytest.raises(DockerfileError, match="COPY"):
        build(f"FROM scratch\nCOPY {src} /x\n")


def test_run_mounts_of_each_type() -> None:
    res = build(
        "FROM tools AS tools\nFROM base\nWORKDIR /w\n"
        "RUN --mount=type=bind,from=tools,source=/bin,target=/t,rw "
        "--mount=type=cache,target=.cache,sharing=locked,uid=1000,mode=0700 "
        "--mount=type=cache,id=shared,target=/c2,from=tools,source=/seed "
        "--mount=type=tmpfs,target=/tmp,size=64m "
        "--mount=type=secret,id=tok,required=true,mode=0440 "
        "--mount=type=secret,id=key,env=API_KEY "
        "--mount=type=ssh "
        "--mount=type=ssh,id=gh,target=/ssh2 make\n",
        build_args={"BUILDKIT_CACHE_MOUNT_NS": "ns"},
    )
    run = exec_with(res, "make")
    mounts = {m.dest: m for m in run.op.exec.mounts}
    bind = mounts["/t"]
    assert bind.selector == "/bin" and not bind.readonly and bind.input >= 0
    cache = mounts["/w/.cache"]
    assert cache.mount_type == ops_pb2.MOUNT_TYPE_CACHE
    assert cache.cache_opt.id == "ns/.cache"
    assert cache.cache_opt.sharing == ops_pb2.CACHE_SHARING_LOCKED
    seed = res.definition[run.op.inputs[cache.input].digest]
    assert seed.file.actions[0].mkdir.mode == 0o700
    assert seed.file.actions[0].mkdir.owner.user.by_id == 1000
    assert cache.selector == "/cache"
    assert mounts["/c2"].cache_opt.id == "ns/shared" and mounts["/c2"].selector == "/seed"
    assert mounts["/tmp"].tmpfs_opt.size == 64 * 1024 * 1024
    secret = mounts["/run/secrets/tok"]
    assert secret.secret_opt.id == "tok" and secret.secret_opt.mode == 0o440
    assert not secret.secret_opt.optional
    assert [(s.id, s.name, s.optional) for s in run.op.exec.secretenv] == [
        ("key", "API_KEY", True)]
    ssh = mounts["/run/buildkit/ssh_agent.0"]
    assert ssh.ssh_opt.id == "default" and ssh.ssh_opt.mode == 0o600
    assert mounts["/ssh2"].ssh_opt.id == "gh"
    assert env_of(run)["SSH_AUTH_SOCK"] == "/run/buildkit/ssh_agent.0"


def test_bind_mount_default_is_readonly_context() -> None:
    res = build("FROM scratch\nRUN --mount=target=/src make\n")
    (bind,) = [m for m in exec_with(res, "make").op.exec.mounts if m.dest == "/src"]
    assert bind.readonly and bind.output == -1


def test_secrets_never_in_env_args_or_history() -> None:
    res = build("FROM scratch\nRUN --mount=type=secret,id=tok,env=TOKEN "
                "--mount=type=secret,id=pw echo $TOKEN\n",
                build_args={"TOKEN": "not-a-declared-arg"})
    run = exec_with(res, "TOKEN")
    assert "TOKEN" not in env_of(run)
    blob = json.dumps(res.image_config) + str(run.op)
    assert "not-a-declared-arg" not in blob
    assert "RUN --mount=type=secret,id=tok,env=TOKEN" in run.name
    assert "echo ****" in run.name


def test_run_heredoc_forms() -> None:
    res = build("FROM scratch\nRUN <<EOF\necho one\necho two\nEOF\n"
                "RUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n"
                "RUN python3 <<EOF\nprint(2)\nEOF\n")
    plain, script, joined = execs(res)
    assert list(plain.op.exec.meta.args) == ["/bin/sh", "-c", "echo one\necho two\n"]
    assert plain.name == "[1/3] RUN <<EOF (echo one...)"
    assert list(script.op.exec.meta.args) == ["/bin/sh", "-c", "/dev/pipes/EOF"]
    pipes = [m for m in script.op.exec.mounts if m.dest == "/dev/pipes"]
    assert pipes and pipes[0].readonly
    mk = res.definition[script.op.inputs[pipes[0].input].digest].file.actions[0].mkfile
    assert mk.mode == 0o755 and mk.data.startswith(b"#!/usr/bin/env python3")
    assert list(joined.op.exec.meta.args) == ["/bin/sh", "-c", "python3 <<EOF\nprint(2)\nEOF"]


def test_network_security_hostname_and_proxy_env() -> None:
    res = build("FROM scratch\nRUN --network=none --security=insecure a\nRUN b\n",
                build_args={"HTTP_PROXY": "http://proxy:3128",
                            "BUILDKIT_SANDBOX_HOSTNAME": "box"})
    a, b = execs(res)
    assert a.op.exec.network == ops_pb2.NET_MODE_NONE
    assert a.op.exec.security == ops_pb2.SECURITY_MODE_INSECURE
    assert b.op.exec.network == ops_pb2.NET_MODE_UNSET  # RUN flags don't leak to later RUNs
    assert b.op.exec.security == ops_pb2.SECURITY_MODE_SANDBOX
    assert a.op.exec.meta.hostname == "box"
    assert a.op.exec.meta.proxy_env.http_proxy == "http://proxy:3128"
    assert "HTTP_PROXY" not in env_of(a)
    assert "proxy" not in json.dumps(res.image_config)


def test_global_network_option() -> None:
    (run,) = execs(build("FROM scratch\nRUN a\n", network="host"))
    assert run.op.exec.network == ops_pb2.NET_MODE_HOST


def test_no_cache_filter_marks_only_that_stage() -> None:
    text = "FROM scratch AS a\nRUN x\nFROM scratch AS b\nCOPY --from=a / /\nRUN y\n"
    res = build(text, no_cache_filter=["A"])
    flags = {v.name.split("]")[0] + "]": v.metadata.ignore_cache for v in execs(res)}
    assert flags == {"[a 1/1]": True, "[b 2/2]": False}
    assert all(v.metadata.ignore_cache for v in execs(build(text, no_cache=True)))


def test_source_locations_point_at_instruction_lines() -> None:
    res = build("FROM scratch\n\nRUN a && \\\n  b\n", dockerfile_name="my.Dockerfile")
    (run,) = execs(res)
    (loc,) = res.definition.locations(run.digest)
    assert (loc.filename, loc.start_line, loc.end_line) == ("my.Dockerfile", 3, 4)


def test_workdir_mkdir_owned_by_user_with_epoch_timestamp() -> None:
    res = build("FROM base\nUSER app\nWORKDIR /home/app\n", source_date_epoch=10)
    (mkdir,) = [a.mkdir for v in vertices(res, "file") for a in v.op.file.actions]
    assert mkdir.path == "/home/app" and mkdir.make_parents and mkdir.mode == 0o755
    assert mkdir.owner.user.by_name.name == "app"
    assert mkdir.timestamp == 10 * 10**9


def test_definition_round_trips_through_validation() -> None:
    from buildkit_py import llb

    res = build("FROM base AS b\nRUN --mount=type=cache,target=/c make\nCOPY --link . /src\n"
                "FROM scratch\nCOPY --from=b /src /src\nRUN <<EOF\n#!/bin/sh\necho\nEOF\n")
    again = llb.Definition.from_bytes(res.definition.to_bytes())
    assert again.head_digest == res.definition.head_digest
    assert len(again) == len(res.definition)
