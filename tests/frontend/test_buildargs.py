"""ARG scoping follows BuildKit: global vs stage scope, build-arg overrides, platform
args, proxy args and the BUILDKIT_* options."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from buildkit_py.errors import UsageError
from buildkit_py.frontend.dockerfile.buildargs import (
    AUTOMATIC_ARGS,
    BuildArgs,
    BuiltinOptions,
    automatic_args,
    is_proxy_arg,
)
from buildkit_py.frontend.dockerfile.shell_lex import ExpansionError, ShellLex
from buildkit_py.platforms import parse_platform

LEX = ShellLex()


def expand(word: str, env: Mapping[str, str]) -> str:
    return LEX.process_word(word, env)


def never(word: str, env: Mapping[str, str]) -> str:
    raise AssertionError(f"default {word!r} must not be expanded")


def build_args(overrides: dict[str, str] | None = None, target: str = "linux/arm/v7",
               stage: str = "final") -> BuildArgs:
    return BuildArgs(
        overrides or {},
        target_platform=parse_platform(target),
        build_platform=parse_platform("linux/amd64"),
        target_stage=stage,
    )


def test_automatic_args_describe_target_and_build_platforms() -> None:
    got = automatic_args(parse_platform("windows(10.0.17763)/amd64"),
                         parse_platform("linux/arm64"), "release")
    assert got == {
        "BUILDPLATFORM": "linux/arm64",
        "BUILDOS": "linux",
        "BUILDOSVERSION": "",
        "BUILDARCH": "arm64",
        "BUILDVARIANT": "",
        "TARGETPLATFORM": "windows(10.0.17763)/amd64",
        "TARGETOS": "windows",
        "TARGETOSVERSION": "10.0.17763",
        "TARGETARCH": "amd64",
        "TARGETVARIANT": "",
        "TARGETSTAGE": "release",
    }
    assert tuple(got) == AUTOMATIC_ARGS


def test_build_arg_overrides_an_automatic_arg() -> None:
    meta = build_args({"TARGETARCH": "riscv64"}).meta_scope()
    assert meta.get("TARGETARCH") == "riscv64"
    assert meta.get("TARGETVARIANT") == "v7"


def test_meta_args_are_visible_to_from_with_automatic_args() -> None:
    meta = build_args().meta_scope()
    meta.declare("VERSION", "3.19", expand=expand)
    meta.declare("IMAGE", "alpine:${VERSION}-${TARGETARCH}${TARGETVARIANT}", expand=expand)
    meta.declare("NOVALUE", None)
    env = meta.env()
    assert env["IMAGE"] == "alpine:3.19-armv7"
    assert "NOVALUE" not in env
    assert LEX.process_word("$IMAGE", env) == "alpine:3.19-armv7"
    assert meta.declared == ["VERSION", "IMAGE", "NOVALUE"]


def test_meta_default_sees_only_earlier_args() -> None:
    meta = build_args().meta_scope()
    assert meta.declare("A", "${B:-unset}", expand=expand) == "unset"
    assert meta.declare("B", "b", expand=expand) == "b"


def test_build_arg_replaces_meta_default_without_expanding_it() -> None:
    meta = build_args({"VERSION": "3.20"}).meta_scope()
    assert meta.declare("VERSION", "${MISSING:?never evaluated}", expand=never) == "3.20"
    assert meta.declare("TAG", "v$VERSION", expand=expand) == "v3.20"


def test_meta_default_errors_propagate() -> None:
    meta = build_args().meta_scope()
    with pytest.raises(ExpansionError):
        meta.declare("A", "${REQUIRED:?set it}", expand=expand)


def test_global_args_are_invisible_in_a_stage_until_redeclared() -> None:
    ba = build_args()
    meta = ba.meta_scope()
    meta.declare("VERSION", "1.0", expand=expand)
    scope = ba.stage_scope(meta, ["PATH=/usr/bin"])
    assert "VERSION" not in scope.expand_env()
    assert "TARGETARCH" not in scope.expand_env()
    assert scope.declare("VERSION", None) == "1.0"
    assert scope.declare("TARGETARCH", None) == "arm"
    assert scope.expand_env() == {"PATH": "/usr/bin", "VERSION": "1.0", "TARGETARCH": "arm"}


def test_redeclared_global_prefers_the_build_arg() -> None:
    ba = build_args({"VERSION": "2.0"})
    meta = ba.meta_scope()
    meta.declare("VERSION", "1.0", expand=never)
    scope = ba.stage_scope(meta)
    assert scope.declare("VERSION", None) == "2.0"


# (build-args, global default, stage default, expected stage value)
RESOLUTION_CASES = [
    ({}, None, None, None),
    ({}, "g", None, "g"),
    ({}, "g", "s", "s"),
    ({}, None, "s", "s"),
    ({"X": "b"}, "g", "s", "b"),
    ({"X": "b"}, None, None, "b"),
    ({"X": ""}, "g", "s", ""),
    ({}, None, "", ""),
]


@pytest.mark.parametrize(("overrides", "global_default", "stage_default", "expected"),
                         RESOLUTION_CASES)
def test_stage_arg_resolution_order(
    overrides: dict[str, str], global_default: str | None, stage_default: str | None,
    expected: str | None
) -> None:
    ba = build_args(overrides)
    meta = ba.meta_scope()
    meta.declare("X", global_default, expand=expand)
    scope = ba.stage_scope(meta)
    assert scope.declare("X", stage_default, expand=expand) == expected
    assert ("X" in scope.expand_env()) is (expected is not None)
    assert scope.arg_names() == {"X"}


def test_stage_default_is_expanded_against_stage_env_and_earlier_args() -> None:
    ba = build_args()
    scope = ba.stage_scope(ba.meta_scope(), {"HOME": "/root"})
    scope.declare("A", "a", expand=expand)
    scope.set_env("E", "e")
    assert scope.declare("B", "$HOME/$A/$E/${TARGETARCH:-none}", expand=expand) == (
        "/root/a/e/none")


def test_arg_is_in_scope_only_from_its_line_on() -> None:
    ba = build_args({"u": "admin"})
    scope = ba.stage_scope(ba.meta_scope())
    assert LEX.process_word("${u:-nobody}", scope.expand_env()) == "nobody"
    scope.declare("u", None)
    assert LEX.process_word("${u:-nobody}", scope.expand_env()) == "admin"


def test_env_and_arg_share_one_environment_and_the_later_write_wins() -> None:
    ba = build_args()
    scope = ba.stage_scope(ba.meta_scope(), {"MODE": "image"})
    scope.declare("MODE", "arg", expand=expand)
    assert scope.expand_env()["MODE"] == "arg"
    scope.set_env("MODE", "env")
    assert scope.expand_env()["MODE"] == "env"
    assert scope.env() == ["MODE=env"]
    # History shows the value the RUN actually sees.
    assert scope.history_args() == [("MODE", "env")]


def test_history_args_list_each_declared_arg_once_in_order() -> None:
    ba = build_args({"B": "bee"})
    meta = ba.meta_scope()
    scope = ba.stage_scope(meta, ["PATH=/bin"])
    scope.declare("A", "1", expand=expand)
    scope.declare("B", None)
    scope.declare("C", None)  # no value anywhere
    scope.declare("A", "2", expand=expand)
    assert scope.history_args() == [("A", "2"), ("B", "bee"), ("C", "")]
    assert scope.history_prefix() == "|3 A=2 B=bee C="
    # A variable set again moves to the end (BuildKit's llb env list order).
    assert scope.env() == ["PATH=/bin", "B=bee", "A=2"]
    assert scope.declared_args() == [("A", "1"), ("B", "bee"), ("C", None), ("A", "2")]


def test_history_prefix_is_empty_without_args() -> None:
    ba = build_args()
    assert ba.stage_scope(ba.meta_scope(), ["PATH=/bin"]).history_prefix() == ""


def test_child_stage_inherits_env_and_args() -> None:
    ba = build_args()
    parent = ba.stage_scope(ba.meta_scope(), ["PATH=/bin"])
    parent.declare("A", "1", expand=expand)
    parent.set_env("E", "e")
    child = parent.child()
    child.declare("B", "2", expand=expand)
    assert child.expand_env() == {"PATH": "/bin", "A": "1", "E": "e", "B": "2"}
    assert child.history_prefix() == "|2 A=1 B=2"
    assert parent.expand_env() == {"PATH": "/bin", "A": "1", "E": "e"}  # unaffected


def test_non_env_buildkit_args_are_recorded_but_not_exported() -> None:
    ba = build_args({"BUILDKIT_SBOM_SCAN_STAGE": "true"})
    scope = ba.stage_scope(ba.meta_scope())
    assert scope.declare("BUILDKIT_SBOM_SCAN_STAGE", None) == "true"
    assert "BUILDKIT_SBOM_SCAN_STAGE" not in scope.expand_env()
    assert scope.arg_names() == {"BUILDKIT_SBOM_SCAN_STAGE"}


@pytest.mark.parametrize("name", ["HTTP_PROXY", "http_proxy", "Https_Proxy", "no_proxy",
                                  "ALL_PROXY", "ftp_proxy"])
def test_proxy_args_in_any_case(name: str) -> None:
    assert is_proxy_arg(name)


def test_proxy_build_args_reach_run_without_declaring_and_stay_out_of_the_cache_key() -> None:
    ba = build_args({"HTTP_PROXY": "http://p:3128", "no_proxy": "localhost", "OTHER": "x"})
    assert ba.proxy_env() == {
        "HTTP_PROXY": "http://p:3128",
        "http_proxy": "http://p:3128",
        "NO_PROXY": "localhost",
        "no_proxy": "localhost",
    }
    scope = ba.stage_scope(ba.meta_scope())
    assert scope.env() == []
    assert scope.history_prefix() == ""
    assert ba.unconsumed() == ["OTHER"]


def test_declared_proxy_arg_becomes_a_normal_arg() -> None:
    ba = build_args({"HTTP_PROXY": "http://p:3128"})
    scope = ba.stage_scope(ba.meta_scope())
    scope.declare("HTTP_PROXY", None)
    assert scope.env() == ["HTTP_PROXY=http://p:3128"]
    assert scope.history_prefix() == "|1 HTTP_PROXY=http://p:3128"


def test_unconsumed_build_args_exclude_declared_builtin_automatic_and_proxy() -> None:
    ba = build_args({
        "USED_GLOBAL": "1", "USED_STAGE": "2", "TYPO": "3", "ZZZ": "4",
        "BUILDKIT_INLINE_CACHE": "1", "SOURCE_DATE_EPOCH": "0", "TARGETARCH": "arm64",
        "https_proxy": "x",
    })
    meta = ba.meta_scope()
    meta.declare("USED_GLOBAL", None)
    ba.stage_scope(meta).declare("USED_STAGE", "d", expand=never)
    assert ba.unconsumed() == ["TYPO", "ZZZ"]
    ba.mark_consumed(["TYPO", "NOT_GIVEN"])
    assert ba.unconsumed() == ["ZZZ"]


def test_builtin_options_defaults() -> None:
    assert build_args().builtin_options() == BuiltinOptions()
    assert BuiltinOptions().sandbox_hostname == "buildkitsandbox"


def test_builtin_options_parse_buildkit_args() -> None:
    opts = build_args({
        "BUILDKIT_CACHE_MOUNT_NS": "ns1",
        "BUILDKIT_CONTEXT_KEEP_GIT_DIR": "1",
        "BUILDKIT_INLINE_CACHE": "true",
        "BUILDKIT_MULTI_PLATFORM": "F",
        "BUILDKIT_SANDBOX_HOSTNAME": "box",
        "BUILDKIT_SYNTAX": "dockerfile.v0",
        "BUILDKIT_BUILD_NAME": "my build",
        "BUILDKIT_DOCKERFILE_CHECK": "skip=all",
        "SOURCE_DATE_EPOCH": "1700000000",
    }).builtin_options()
    assert opts == BuiltinOptions(
        cache_mount_ns="ns1", context_keep_git_dir=True, inline_cache=True,
        multi_platform=False, sandbox_hostname="box", syntax="dockerfile.v0",
        build_name="my build", dockerfile_check="skip=all", source_date_epoch=1700000000)


def test_source_date_epoch_context_is_not_a_number() -> None:
    assert build_args({"SOURCE_DATE_EPOCH": "context"}).builtin_options().source_date_epoch \
        is None


@pytest.mark.parametrize(("name", "value"), [
    ("BUILDKIT_MULTI_PLATFORM", "yes"),
    ("BUILDKIT_INLINE_CACHE", "on"),
    ("SOURCE_DATE_EPOCH", "yesterday"),
    ("SOURCE_DATE_EPOCH", "-5"),
])
def test_bad_builtin_option_is_a_usage_error(name: str, value: str) -> None:
    with pytest.raises(UsageError, match=name):
        build_args({name: value}).builtin_options()
