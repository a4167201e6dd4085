"""ARG scoping (reference §1.8): global args, build-arg overrides, redeclaration,
automatic platform args, proxy args, unused build-args warning."""

from __future__ import annotations

from tests.convert.helpers import AMD64, ARM64, FakeResolver, build, env_of, exec_with, history


def test_global_arg_only_visible_in_from_until_redeclared() -> None:
    resolver = FakeResolver()
    res = build("ARG IMG=base\nARG V=1\nFROM ${IMG}:${V}\nRUN echo a$V\nARG V\nRUN echo b$V\n",
                image_resolver=resolver)
    assert resolver.calls[0][0] == "docker.io/library/base:1"
    assert "V" not in env_of(exec_with(res, "echo a"))
    assert env_of(exec_with(res, "echo b"))["V"] == "1"


def test_build_arg_overrides_global_and_stage_defaults() -> None:
    text = "ARG V=global\nFROM scratch\nARG V\nARG W=default\nRUN echo\n"
    run = exec_with(build(text, build_args={"V": "cli", "W": "cli-w"}), "echo")
    assert env_of(run)["V"] == "cli" and env_of(run)["W"] == "cli-w"
    run = exec_with(build(text), "echo")
    assert env_of(run)["V"] == "global" and env_of(run)["W"] == "default"


def test_arg_default_expands_earlier_args_and_env() -> None:
    run = exec_with(build("FROM scratch\nENV E=e\nARG A=a\nARG B=${A}-${E}-${U:-u}\nRUN x\n"),
                    "x")
    assert env_of(run)["B"] == "a-e-u"


def test_env_wins_over_arg_of_same_name_in_expansion() -> None:
    res = build("FROM scratch\nARG X=arg\nENV X=env\nWORKDIR /$X\n")
    assert res.image_config["config"]["WorkingDir"] == "/env"


def test_arg_in_scope_only_from_its_line() -> None:
    res = build("FROM scratch\nUSER ${u:-early}\nARG u=late\nLABEL l=$u\n")
    cfg = res.image_config["config"]
    assert cfg["User"] == "early" and cfg["Labels"] == {"l": "late"}


def test_arg_values_are_not_in_image_env_but_in_history_prefix() -> None:
    res = build("FROM scratch\nARG A=1 B\nARG C=3\nRUN make\n", build_args={"B": "2"})
    assert all(not e.startswith(("A=", "B=", "C=")) for e in res.image_config["config"]["Env"])
    assert ("RUN |3 A=1 B=2 C=3 /bin/sh -c make # buildkit", False) in history(res)
    assert ("ARG A=1 B=2", True) in history(res)


def test_stage_from_stage_inherits_args() -> None:
    res = build("FROM scratch AS a\nARG X=1\nFROM a\nRUN echo\n")
    assert env_of(exec_with(res, "echo"))["X"] == "1"


def test_automatic_platform_args_need_declaration() -> None:
    text = ("FROM --platform=$BUILDPLATFORM scratch\nRUN echo a\n"
            "ARG TARGETARCH\nARG BUILDPLATFORM\nARG TARGETPLATFORM\nRUN echo b\n")
    res = build(text, target_platform=ARM64, build_platform=AMD64)
    assert "TARGETARCH" not in env_of(exec_with(res, "echo a"))
    env = env_of(exec_with(res, "echo b"))
    assert env["TARGETARCH"] == "arm64"
    assert env["BUILDPLATFORM"] == "linux/amd64"
    assert env["TARGETPLATFORM"] == "linux/arm64"


def test_build_arg_overrides_automatic_arg() -> None:
    res = build("FROM scratch\nARG TARGETOS\nRUN echo\n", build_args={"TARGETOS": "plan9"})
    assert env_of(exec_with(res, "echo"))["TARGETOS"] == "plan9"


def test_meta_arg_default_sees_automatic_args() -> None:
    resolver = FakeResolver()
    build("ARG TAG=$TARGETARCH\nFROM base:$TAG\n", image_resolver=resolver,
          target_platform=ARM64)
    assert resolver.calls[0][0] == "docker.io/library/base:arm64"


def test_declared_proxy_arg_becomes_normal_arg() -> None:
    res = build("FROM scratch\nARG http_proxy\nRUN x\n", build_args={"http_proxy": "p"})
    run = exec_with(res, "x")
    assert env_of(run)["http_proxy"] == "p"
    assert ("RUN |1 http_proxy=p /bin/sh -c x # buildkit", False) in history(res)


def test_unconsumed_build_args_warning() -> None:
    res = build("ARG G\nFROM scratch\nARG USED\n",
                build_args={"USED": "1", "G": "2", "EXTRA": "3", "HTTPS_PROXY": "p",
                            "BUILDKIT_INLINE_CACHE": "1"})
    (warning,) = res.warnings
    assert "EXTRA" in warning.message
    assert "USED" not in warning.message and "HTTPS_PROXY" not in warning.message
    assert not build("FROM scratch\nARG A\n", build_args={"A": "1"}).warnings


def test_target_stage_arg() -> None:
    res = build("FROM scratch AS one\nARG TARGETSTAGE\nRUN a\nFROM scratch AS two\n",
                target="one")
    assert env_of(exec_with(res, "a"))["TARGETSTAGE"] == "one"
