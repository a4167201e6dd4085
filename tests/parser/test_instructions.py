"""Typed instructions: stages, flags, mounts, healthcheck, errors (reference §1.9, §2)."""

from __future__ import annotations

import pytest

from buildkit_py.errors import DockerfileError
from buildkit_py.frontend.dockerfile import load_dockerfile
from buildkit_py.frontend.dockerfile.instructions import (
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    Healthcheck,
    Label,
    Maintainer,
    Mount,
    MountError,
    Onbuild,
    Run,
    Shell,
    StopSignal,
    User,
    Volume,
    Workdir,
    format_go_duration,
    parse_go_duration,
    parse_mount,
)
from buildkit_py.frontend.dockerfile.parser import CheckConfig


def load_one(body: str) -> object:
    """The first instruction of a one-stage Dockerfile."""
    return load_dockerfile(f"FROM scratch\n{body}\n").stages[0].commands[0]


def error_of(text: str) -> DockerfileError:
    with pytest.raises(DockerfileError) as info:
        load_dockerfile(text)
    return info.value


def test_stages_meta_args_and_descriptions() -> None:
    df = load_dockerfile(
        "# V the version\nARG V=1 W\n# base is the base\nFROM --platform=$P img:$V AS Base\n"
        "RUN a\n\nFROM base\nUSER x\n"
    )
    assert [(a.key, a.value, a.description) for m in df.meta_args for a in m.args] == [
        ("V", "1", "the version"),
        ("W", None, ""),
    ]
    first, second = df.stages
    assert (first.index, first.name, first.base, first.platform) == (0, "base", "img:$V", "$P")
    assert first.description == "is the base"
    assert (second.name, second.display_name, second.base) == (None, "stage-1", "base")
    assert df.stage("BASE") is first and df.stage("1") is second and df.default_stage is second
    assert first.location.start_line == 4 and first.commands[0].location.start_line == 5


def test_every_instruction_has_a_class_and_its_source() -> None:
    text = (
        "FROM scratch\nRUN a\nCMD b\nENTRYPOINT [\"c\"]\nENV d=e\nLABEL f=g\nMAINTAINER h\n"
        "EXPOSE 80\nCOPY i j\nADD k l\nVOLUME /m\nUSER n\nWORKDIR /o\nARG p\nONBUILD RUN q\n"
        "STOPSIGNAL SIGTERM\nHEALTHCHECK NONE\nSHELL [\"sh\"]\n"
    )
    commands = load_dockerfile(text).stages[0].commands
    kinds = [type(c) for c in commands]
    assert kinds == [
        Run, Cmd, Entrypoint, Env, Label, Maintainer, Expose, Copy, Add, Volume, User,
        Workdir, Arg, Onbuild, StopSignal, Healthcheck, Shell,
    ]
    for line, cmd in enumerate(commands, start=2):
        assert cmd.location.start_line == line
        assert cmd.location.lines == (text.splitlines()[line - 1],)
        assert cmd.original == text.splitlines()[line - 1]


def test_expandable_fields_are_declared() -> None:
    assert Copy.EXPANDABLE == ("sources", "dest", "chown", "chmod", "excludes")
    assert "from_" not in Copy.EXPANDABLE and Run.EXPANDABLE == ("mounts",)
    assert Shell.EXPANDABLE == () and Healthcheck.EXPANDABLE == () and Cmd.EXPANDABLE == ()
    for cls in (Env, Label, Expose, User, Workdir, Volume, StopSignal, Arg, Add):
        assert cls.EXPANDABLE
        for name in cls.EXPANDABLE:
            assert name in cls.__dataclass_fields__


def test_values_stay_unexpanded() -> None:
    env = load_one('ENV A=$HOME B="${X:-y}"')
    assert isinstance(env, Env)
    assert [(p.key, p.value, p.legacy) for p in env.pairs] == [
        ("A", "$HOME", False),
        ("B", '"${X:-y}"', False),
    ]
    legacy = load_one("ENV K some value")
    assert isinstance(legacy, Env) and legacy.pairs[0].legacy


def test_shell_and_exec_forms() -> None:
    run = load_one("RUN echo $HOME && ls")
    assert isinstance(run, Run) and run.command == ["echo $HOME && ls"] and run.prepend_shell
    cmd = load_one('CMD ["a", "b"]')
    assert isinstance(cmd, Cmd) and cmd.command == ["a", "b"] and not cmd.prepend_shell
    ep = load_one("ENTRYPOINT []")
    assert isinstance(ep, Entrypoint) and ep.command == [] and not ep.prepend_shell


def test_run_flags_and_heredoc_files() -> None:
    run = load_one("RUN --network=host --security=insecure <<EOF\necho hi\nEOF")
    assert isinstance(run, Run)
    assert (run.network, run.security, run.command) == ("host", "insecure", ["<<EOF"])
    assert [(h.name, h.body()) for h in run.heredocs] == [("EOF", "echo hi\n")]


def test_copy_and_add_flags() -> None:
    copy = load_one(
        "COPY --from=build --chown=1:1 --chmod=755 --link --parents --exclude=a --exclude=b x y /d/"
    )
    assert isinstance(copy, Copy)
    assert (copy.from_, copy.chown, copy.chmod, copy.link, copy.parents) == (
        "build", "1:1", "755", True, True,
    )
    assert copy.excludes == ["a", "b"] and copy.sources == ["x", "y"] and copy.dest == "/d/"
    add = load_one(
        "ADD --keep-git-dir --checksum=sha256:ab --unpack=false --link=FALSE u /d"
    )
    assert isinstance(add, Add)
    assert (add.keep_git_dir, add.checksum, add.unpack, add.link) == (
        True, "sha256:ab", False, False,
    )
    plain = load_one("ADD a b")
    assert isinstance(plain, Add) and plain.unpack is None and plain.keep_git_dir is None


def test_copy_heredoc_sources() -> None:
    copy = load_one("COPY <<-EOF <<'RAW' real /d/\n\tx $y\n\tEOF\n$z\nRAW")
    assert isinstance(copy, Copy)
    assert copy.sources == ["real"]
    assert [(c.path, c.data, c.expand) for c in copy.contents] == [
        ("EOF", "x $y\n", True),
        ("RAW", "$z\n", False),
    ]


@pytest.mark.parametrize(
    ("line", "message", "hint"),
    [
        ("COPY --form=x a b", "unknown flag: --form (did you mean from?)",
         "COPY takes --from, --chown, --chmod, --link, --parents, --exclude"),
        ("RUN --mount", "missing a value on flag: --mount", None),
        ("FROM x", "", None),
        ("COPY --link=maybe a b", "expecting boolean value for flag --link, not: maybe", None),
        ("COPY --from=a --from=b a b", "duplicate flag specified: --from", None),
        ("RUN --mount=from=$X,target=/m x", "'from' doesn't support variable expansion", None),
        ("RUN --network=bridge x", 'invalid network mode "bridge"', None),
        ("RUN --security=root x", 'security "root" is not valid', None),
        ("USER --x=1 me", "unknown flag: --x", "USER takes no flags"),
        ("ADD --from=x a b", "unknown flag: --from", None),
    ],
)
def test_flag_errors(line: str, message: str, hint: str | None) -> None:
    if not message:  # FROM inside a stage is a new stage, not an error
        assert len(load_dockerfile(f"FROM scratch\n{line}\n").stages) == 2
        return
    err = error_of(f"FROM scratch\n{line}\n")
    assert message in err.message
    assert err.location is not None and err.location.start_line == 2
    if hint:
        assert err.hint == hint


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ENV", "ENV requires at least one argument"),
        ("LABEL =x", "LABEL names can not be blank"),
        ("ARG", "ARG requires at least one argument"),
        ("ARG =x", "ARG names can not be blank"),
        ("USER", "USER requires exactly one argument"),
        ("WORKDIR", "WORKDIR requires exactly one argument"),
        ("EXPOSE", "EXPOSE requires at least one argument"),
        ('VOLUME [""]', "VOLUME specified can not be an empty string"),
        ("COPY onlyone", "COPY requires at least two arguments"),
        ("SHELL []", "SHELL requires at least one argument"),
        ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        ("HEALTHCHECK TCP 80", 'Unknown type "TCP" in HEALTHCHECK (try CMD)'),
        ("HEALTHCHECK --retries=-1 CMD x", "--retries cannot be negative (-1)"),
        ("HEALTHCHECK --retries=x CMD x", "invalid syntax"),
        ("HEALTHCHECK --timeout=1us CMD x", 'Interval "timeout" cannot be less than 1ms'),
        ("ONBUILD", "ONBUILD requires at least one argument"),
        ("ONBUILD MAINTAINER x", "MAINTAINER isn't allowed as an ONBUILD trigger"),
        ("FROM a b", "FROM requires either one or three arguments"),
        ("FROM a AS b!", 'invalid name for build stage: "b!"'),
    ],
)
def test_instruction_errors(line: str, message: str) -> None:
    err = error_of(f"FROM scratch\n{line}\n")
    assert message in err.message
    assert err.location is not None and err.location.start_line == 2
    assert "Dockerfile:2" in err.render() and line in err.render()


def test_unknown_instruction_suggests_the_closest() -> None:
    err = error_of("FROM a\nCOPPY a b\n")
    assert err.message == "unknown instruction: COPPY (did you mean COPY?)" and err.hint is None
    assert err.text() == f"dockerfile parse error on line 2: {err.message}"
    far = error_of("FROM a\nXYZZYQ a\n")
    assert far.message == "unknown instruction: XYZZYQ" and far.hint


def test_only_arg_before_first_from() -> None:
    err = error_of("ARG a\nRUN x\nFROM a\n")
    assert err.message == "no build stage in current context"
    assert err.location is not None and err.location.start_line == 2
    assert "no stages" in error_of("ARG a\n").message


def test_healthcheck_durations_in_nanoseconds() -> None:
    hc = load_one(
        "HEALTHCHECK --interval=1m30s --timeout=1.5s --start-period=0s --start-interval=250ms "
        "--retries=0 CMD [\"check\", \"-q\"]"
    )
    assert isinstance(hc, Healthcheck)
    assert hc.test == ["CMD", "check", "-q"]
    assert (hc.interval, hc.timeout, hc.start_period, hc.start_interval, hc.retries) == (
        90_000_000_000, 1_500_000_000, 0, 250_000_000, 0,
    )
    shell = load_one("HEALTHCHECK CMD curl -f http://x/ || exit 1")
    assert isinstance(shell, Healthcheck)
    assert shell.test == ["CMD-SHELL", "curl -f http://x/ || exit 1"]
    none = load_one("healthcheck none")
    assert isinstance(none, Healthcheck) and none.test == ["NONE"]


@pytest.mark.parametrize(
    ("text", "ns"),
    [("0", 0), ("300ms", 300_000_000), ("1h2m3s", 3_723_000_000_000), ("-1.5us", -1500),
     ("2µs", 2000), (".5s", 500_000_000)],
)
def test_go_durations(text: str, ns: int) -> None:
    assert parse_go_duration(text) == ns


@pytest.mark.parametrize("text", ["", "1", "s", "1x", "--1s", "1.s.5"])
def test_go_duration_errors(text: str) -> None:
    with pytest.raises(ValueError, match="time: "):
        parse_go_duration(text)


def test_format_go_duration() -> None:
    assert [format_go_duration(n) for n in (0, 1_500_000_000, 90_000_000_000, 5_000_000)] == [
        "0s", "1.5s", "1m30s", "5ms",
    ]


def test_onbuild_keeps_the_trigger_text() -> None:
    ob = load_one("onbuild   COPY --from=0 a b")
    assert isinstance(ob, Onbuild) and ob.expression == "COPY --from=0 a b" and ob.trigger == "COPY"


def test_onbuild_trigger_carries_its_heredoc() -> None:
    ob = load_one("ONBUILD RUN <<EOF\necho hi\nEOF")
    assert isinstance(ob, Onbuild) and ob.expression == "RUN <<EOF\necho hi\nEOF"
    child = load_dockerfile("FROM scratch\n" + ob.expression + "\n").stages[0].commands[0]
    assert isinstance(child, Run) and [h.body() for h in child.heredocs] == ["echo hi\n"]


def test_arg_descriptions_come_from_matching_comments() -> None:
    df = load_dockerfile("FROM a\n# A first\n# B second\nARG A B=2 C\n")
    arg = df.stages[0].commands[0]
    assert isinstance(arg, Arg)
    assert [(d.key, d.value, d.description) for d in arg.args] == [
        ("A", None, "first"), ("B", "2", "second"), ("C", None, ""),
    ]


def test_check_and_syntax_directives_are_typed() -> None:
    df = load_dockerfile(
        "# syntax=docker/dockerfile:1.7 extra\n# check=skip=all;error=true\nFROM a\n"
    )
    assert df.syntax == "docker/dockerfile:1.7" and df.check.skip_all and df.check.error
    # a malformed value is the linter's error when converting (BuildKit's wording, no
    # location: tests/e2e/test_lint_referee.py), not the load's
    assert load_dockerfile("# check=error=maybe\nFROM a\n").check == CheckConfig()


# ---------------------------------------------------------------- RUN --mount


def resolve(raw: str) -> Mount:
    return parse_mount(raw).resolve()


def test_mount_bind_defaults_read_only() -> None:
    m = resolve("target=/src,source=sub,from=build")
    assert (m.type, m.target, m.source, m.from_) == ("bind", "/src", "sub", "build")
    assert m.read_only
    assert resolve("type=bind,dst=/x,rw").read_only is False
    assert resolve("type=bind,destination=/x,readwrite=true").read_only is False


def test_mount_cache_keys() -> None:
    m = resolve("type=cache,id=go,target=/c,sharing=LOCKED,mode=0700,uid=1000,gid=100,ro")
    assert (m.id, m.sharing, m.mode, m.uid, m.gid) == ("go", "locked", 0o700, 1000, 100)
    assert m.read_only
    assert resolve("type=cache,target=/c").read_only is False


def test_mount_tmpfs_size() -> None:
    assert resolve("type=tmpfs,target=/t,size=64m").size == 64 * 1024 * 1024
    assert resolve("type=tmpfs,target=/t,size=1.5g").size == int(1.5 * 1024**3)
    assert resolve("type=tmpfs,dst=/t").read_only is False


def test_mount_secret_and_ssh() -> None:
    s = resolve("type=secret,target=/run/secrets/npmrc,required,mode=0440")
    assert (s.secret_id, s.required, s.mode, s.read_only) == ("npmrc", True, 0o440, True)
    assert resolve("type=secret,id=tok,env=TOKEN").env == "TOKEN"
    assert resolve("type=secret,src=abc").secret_id == "abc"
    ssh = resolve("type=ssh,required=false")
    assert (ssh.ssh_id, ssh.required) == ("default", False)
    assert resolve("type=ssh,id=gh,target=/s").ssh_id == "gh"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("type=volume,target=/x", 'unsupported mount type "volume"'),
        ("type=bind,target=/x,mode=0755", 'mode not allowed for "bind" type mounts'),
        ("type=tmpfs,target=/x,uid=1", 'uid not allowed for "tmpfs" type mounts'),
        ("type=bind,target=/x,sharing=shared", "invalid cache sharing set for bind mount"),
        ("type=cache,target=/x,sharing=sometimes", 'unsupported sharing value "sometimes"'),
        ("type=cache,target=/x,mode=999", "invalid value 999 for mode"),
        ("type=cache,target=/x,uid=-1", "invalid value -1 for uid"),
        ("type=bind,target=/x,required", "unexpected key 'required' for mount type 'bind'"),
        ("type=bind,target=/x,size=1m", "unexpected key 'size' for mount type 'bind'"),
        ("type=cache,target=/x,env=A", "unexpected key 'env' for mount type 'cache'"),
        ("type=tmpfs,target=/x,size=lots", "invalid value for size: lots"),
        ("type=bind,target=/x,ro=perhaps", "invalid value for ro: perhaps"),
        ("target=/x,bogus", "invalid field 'bogus' must be a key=value pair"),
        ("target=/x,colour=red", "unexpected key 'colour' in 'colour=red'"),
        ("type=secret,from=x,id=a", "secret mount should not have a from"),
        ("type=secret", "invalid secret mount. one of source, target required"),
        ("type=secret,id=a,source=b", "both source and id can't be set"),
        ("type=bind,target=/x,from=$STAGE", "'from' doesn't support variable expansion"),
        ('target="/x', "failed to parse csv mounts"),
        ("", "failed to parse csv mounts"),
    ],
)
def test_mount_errors(raw: str, message: str) -> None:
    with pytest.raises(MountError, match=None) as info:
        resolve(raw)
    assert message in str(info.value)


def test_mount_values_with_variables_resolve_later() -> None:
    spec = parse_mount("type=cache,target=$DIR,uid=${UID}")
    assert spec.needs_expansion
    mount = spec.resolve(lambda s: s.replace("${UID}", "1001").replace("$DIR", "/cache"))
    assert (mount.target, mount.uid) == ("/cache", 1001)
    run = load_one("RUN --mount=type=cache,target=$DIR,uid=$UID true")
    assert isinstance(run, Run) and run.mounts == [parse_mount("type=cache,target=$DIR,uid=$UID")]


def test_mount_values_wait_for_conversion_but_from_variables_do_not() -> None:
    # As BuildKit: loading checks the CSV and from= only (tests/convert checks the rest).
    load_dockerfile("FROM a\nRUN --mount=type=cache,target=/x,sharng=locked true\n")
    err = error_of("FROM a\nRUN --mount=from=$S,target=/x true\n")
    assert err.text() == ("dockerfile parse error on line 2: 'from' doesn't support variable "
                          "expansion, define alias stage instead")
