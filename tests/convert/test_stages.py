"""Stages: FROM resolution, --target pruning, multi-platform digests, ONBUILD, errors
(reference §1.9 FROM/ONBUILD, §3)."""

from __future__ import annotations

import json

import pytest

from buildkit_py.errors import DockerfileError, UserError
from buildkit_py.frontend.dockerfile.convert import ConvertResult
from buildkit_py.llb import ops_pb2
from tests.convert.helpers import (
    AMD64,
    ARM64,
    FakeResolver,
    build,
    env_of,
    exec_with,
    execs,
    history,
    image_config,
    vertices,
)

MULTI = """\
FROM --platform=$BUILDPLATFORM golang AS build
RUN go build -o /out/app
FROM alpine
ARG TARGETARCH
COPY --from=build /out/app /app
COPY etc/ /etc/app/
RUN echo $TARGETARCH
"""


def test_buildplatform_stage_and_context_share_digests_across_targets() -> None:
    amd = build(MULTI, target_platform=AMD64, build_platform=AMD64)
    arm = build(MULTI, target_platform=ARM64, build_platform=AMD64)
    go_amd, go_arm = exec_with(amd, "go build"), exec_with(arm, "go build")
    assert go_amd.digest == go_arm.digest
    assert go_amd.op.platform.architecture == "amd64"
    def local(res: ConvertResult) -> set[str]:
        return {v.digest for v in vertices(res, "source")
                if v.op.source.identifier.startswith("local")}

    assert len(local(amd)) == 1 and local(amd) == local(arm)
    echo_amd, echo_arm = exec_with(amd, "TARGETARCH"), exec_with(arm, "TARGETARCH")
    assert echo_amd.digest != echo_arm.digest
    assert echo_arm.op.platform.architecture == "arm64"
    assert env_of(echo_arm)["TARGETARCH"] == "arm64"
    assert arm.definition.head_digest != amd.definition.head_digest


def test_target_prunes_unused_stages_and_their_images() -> None:
    resolver = FakeResolver()
    text = ("FROM nosuch/image:never AS broken\nRUN exit 1\nWORKDIR ${UNSET:?boom}\n"
            "FROM base AS dep\nRUN make\n"
            "FROM dep AS app\nCOPY --from=dep /x /y\n"
            "FROM app AS last\n")
    res = build(text, target="app", image_resolver=resolver)
    assert [ref for ref, _ in resolver.calls] == ["docker.io/library/base:latest"]
    assert res.stage_name == "app"
    assert len(execs(res)) == 1


def test_default_target_is_last_stage() -> None:
    res = build("FROM scratch AS a\nRUN a\nFROM scratch AS b\nRUN b\n")
    assert res.stage_name == "b"
    assert [list(v.op.exec.meta.args)[-1] for v in execs(res)] == ["b"]


def test_unknown_target_lists_stages() -> None:
    with pytest.raises(UserError) as err:
        build("FROM scratch AS one\nFROM scratch AS two\n", target="three")
    assert "three" in err.value.message
    assert err.value.hint is not None and "one" in err.value.hint and "two" in err.value.hint


def test_stage_names_are_case_insensitive_and_indexes_work() -> None:
    res = build("FROM base AS Builder\nRUN make\nFROM scratch\nCOPY --from=BUILDER /a /a\n"
                "COPY --from=0 /b /b\n")
    copies = [v for v in vertices(res, "file")]
    assert len({c.op.inputs[-1].digest for c in copies}) == 1


def test_from_earlier_stage_inherits_filesystem_config_and_workdir() -> None:
    res = build("FROM base AS one\nWORKDIR /app\nENV A=1\nFROM one\nRUN pwd\n")
    run = exec_with(res, "pwd")
    assert run.op.exec.meta.cwd == "/app" and env_of(run)["A"] == "1"
    assert res.image_config["config"]["WorkingDir"] == "/app"


def test_copy_from_image_resolves_for_target_platform() -> None:
    resolver = FakeResolver()
    res = build("FROM scratch\nCOPY --from=nginx:1.25 /etc/nginx /etc/nginx\n",
                image_resolver=resolver, target_platform=ARM64)
    assert resolver.calls == [("docker.io/library/nginx:1.25", ARM64)]
    (img,) = [v for v in vertices(res, "source")]
    assert img.op.source.identifier.startswith("docker-image://docker.io/library/nginx:1.25@")


def test_named_context_replaces_image_and_stage() -> None:
    resolver = FakeResolver()
    res = build("FROM alpine AS base\nRUN a\nFROM base\nCOPY --from=src / /src\n",
                build_contexts={"alpine": "docker-image://busybox:1.36", "src": "local:srcdir"},
                image_resolver=resolver)
    assert [r for r, _ in resolver.calls] == ["docker.io/library/busybox:1.36"]
    idents = {v.op.source.identifier for v in vertices(res, "source")}
    assert "local://srcdir" in idents


def test_named_local_context_takes_its_own_dockerignore() -> None:
    res = build("FROM base\nCOPY --from=src / /src\n", build_contexts={"src": "local:srcdir"},
                context_ignores={"srcdir": ["*.tmp"]}, ignore_patterns=["*.md"])
    (local,) = [v for v in vertices(res, "source")
                if v.op.source.identifier == "local://srcdir"]
    assert json.loads(local.op.source.attrs["local.excludepatterns"]) == ["*.tmp"]


def test_named_context_replaces_a_stage_built_from_another_stage() -> None:
    res = build("FROM base AS one\nRUN a\nFROM one AS two\nRUN b\nFROM two\nRUN c\n",
                build_contexts={"two": "local:prebuilt"})
    assert [v.op.exec.meta.args[-1] for v in execs(res)] == ["c"]
    assert {v.op.source.identifier for v in vertices(res, "source")} == {"local://prebuilt"}


def test_scratch_like_image_is_treated_as_scratch() -> None:
    cfg = image_config(layers=0)
    res = build("FROM empty\nRUN x\n", image_resolver=FakeResolver({"empty": cfg}))
    (run,) = execs(res)
    root = next(m for m in run.op.exec.mounts if m.dest == "/")
    assert root.input == -1


def test_missing_resolver_is_a_clear_error_but_scratch_needs_none() -> None:
    build("FROM scratch AS a\nFROM a\nRUN x\n", image_resolver=None)
    with pytest.raises(UserError, match="resolver") as err:
        build("FROM scratch\n\nCOPY --from=alpine / /\n", image_resolver=None)
    assert getattr(err.value, "location", None) is not None


def test_onbuild_triggers_from_base_image_run_after_from_and_are_cleared() -> None:
    base = image_config(OnBuild=["COPY --from=assets /a /a", "RUN echo onbuild"])
    res = build("FROM scratch AS assets\nFROM base\nRUN echo mine\n",
                image_resolver=FakeResolver({"base": base}))
    args = [v.op.exec.meta.args[-1] for v in execs(res)]
    assert args == ["echo onbuild", "echo mine"]
    assert "OnBuild" not in res.image_config["config"]
    assert [h for h, _ in history(res)][:2] == ["COPY /a /a # buildkit",
                                                "RUN /bin/sh -c echo onbuild # buildkit"]
    assert any("ONBUILD RUN echo onbuild" in v.name for v in execs(res))


def test_onbuild_triggers_from_base_stage() -> None:
    res = build("FROM scratch AS parent\nONBUILD RUN echo trigger\nFROM parent\nRUN echo child\n")
    args = [v.op.exec.meta.args[-1] for v in execs(res)]
    assert args == ["echo trigger", "echo child"]
    assert "OnBuild" not in res.image_config["config"]


def test_copy_from_invalid_stage_index_is_located() -> None:
    with pytest.raises(DockerfileError, match="invalid stage index 3") as err:
        build("FROM scratch\nCOPY --from=3 / /\n")
    assert err.value.location is not None and err.value.location.start_line == 2


def test_copy_from_later_stage_is_an_error() -> None:
    with pytest.raises(DockerfileError, match="defined before") as err:
        build("FROM scratch AS a\nCOPY --from=b / /\nFROM scratch AS b\nFROM a\n")
    assert err.value.location is not None and err.value.location.start_line == 2


def test_circular_stage_references() -> None:
    with pytest.raises(DockerfileError, match="circular") as err:
        build("FROM scratch AS a\nCOPY --from=b / /\nFROM scratch AS b\nCOPY --from=a / /\n")
    assert err.value.location is not None and err.value.location.start_line in (2, 4)


def test_from_with_variable_in_copy_from_is_an_error() -> None:
    with pytest.raises(DockerfileError, match="variable expansion is not supported for --from"
                       ) as err:
        build("FROM scratch AS a\nFROM scratch\nARG S=a\nCOPY --from=$S / /\n")
    assert err.value.location is not None and err.value.location.start_line == 4


def test_expansion_error_carries_location() -> None:
    with pytest.raises(DockerfileError) as err:
        build("FROM scratch\nENV A=1\nWORKDIR ${A:?must be set}/${B:?B is required}\n")
    assert err.value.location is not None and err.value.location.start_line == 3
    assert "B is required" in err.value.message


def test_chown_with_empty_user_is_a_name_lookup() -> None:
    # As BuildKit's llb.WithUser: no error; the empty name matches no passwd entry (uid 0).
    res = build("FROM scratch\nCOPY --chown=:grp a /a\n")
    (copy,) = [v.op.file.actions[0].copy for v in vertices(res, "file")]
    assert copy.owner.user.by_name.name == "" and copy.owner.group.by_name.name == "grp"


def test_blank_base_name_and_bad_platform() -> None:
    with pytest.raises(DockerfileError, match="blank"):
        build("ARG X\nFROM $X\n")
    with pytest.raises(DockerfileError, match="platform") as err:
        build("FROM --platform=nope/x/y/z scratch\n")
    assert err.value.location is not None and err.value.location.start_line == 1


def test_from_platform_uses_expanded_meta_args() -> None:
    resolver = FakeResolver()
    res = build("ARG P=linux/arm64\nFROM --platform=$P base\nRUN x\n", image_resolver=resolver)
    assert resolver.calls[0][1] == ARM64
    assert exec_with(res, "x").op.platform == ops_pb2.Platform(os="linux",
                                                                architecture="arm64")


@pytest.mark.parametrize(("mount", "message"), [
    ("type=cache,target=/x,sharng=locked",
     "unexpected key 'sharng' in 'sharng=locked' (did you mean sharing?)"),
    ("type=cahce,target=/x", 'unsupported mount type "cahce" (did you mean cache?)'),
    ("type=cache,target=/x,bogus", "invalid field 'bogus' must be a key=value pair"),
    ("type=cache", 'invalid mount target "/"'),
])
def test_mount_errors_are_conversion_errors_at_the_run_line(mount: str, message: str) -> None:
    # BuildKit words them without "dockerfile parse error on line N"
    with pytest.raises(DockerfileError) as err:
        build(f"FROM scratch\nRUN --mount={mount} true\n")
    assert err.value.message == message and err.value.parse_line is None
    assert err.value.location is not None and err.value.location.start_line == 2
