"""The image config and history built alongside the LLB (reference §1.9, §1.12)."""

from __future__ import annotations

import pytest

from buildkit_py.errors import DockerfileError
from buildkit_py.frontend.dockerfile.convert.image_config import DEFAULT_PATH
from tests.convert.helpers import AMD64, ARM64, FakeResolver, build, history, image_config


def test_env_replaces_in_place_and_sees_previous_values() -> None:
    res = build("FROM base\nENV A=1 B=2\nENV A=x C=$A\n",
                image_resolver=FakeResolver({"base": image_config(env=["PATH=/p", "A=0"])}))
    assert res.image_config["config"]["Env"] == ["PATH=/p", "A=x", "B=2", "C=1"]


def test_scratch_gets_default_path_and_root_workdir() -> None:
    cfg = build("FROM scratch\nLABEL a=b\n").image_config
    assert cfg["config"]["Env"] == [f"PATH={DEFAULT_PATH}"]
    assert cfg["config"]["WorkingDir"] == "/"
    assert (cfg["os"], cfg["architecture"]) == ("linux", "amd64")
    assert "rootfs" not in cfg and "created" not in cfg


def test_base_image_without_path_gets_default_path() -> None:
    res = build("FROM base\n", image_resolver=FakeResolver({"base": image_config(env=["X=1"])}))
    assert res.image_config["config"]["Env"] == ["X=1", f"PATH={DEFAULT_PATH}"]


def test_workdir_user_and_relative_workdir() -> None:
    cfg = build("FROM scratch\nWORKDIR /a\nWORKDIR b/../c\nUSER app:staff\n").image_config
    assert cfg["config"]["WorkingDir"] == "/a/c"
    assert cfg["config"]["User"] == "app:staff"


def test_entrypoint_resets_inherited_cmd() -> None:
    resolver = FakeResolver({"base": image_config(Cmd=["sh"])})
    cfg = build('FROM base\nENTRYPOINT ["/app"]\n', image_resolver=resolver).image_config
    assert cfg["config"]["Entrypoint"] == ["/app"]
    assert "Cmd" not in cfg["config"]


def test_entrypoint_keeps_cmd_set_earlier_in_same_stage() -> None:
    cfg = build('FROM scratch\nCMD ["--help"]\nENTRYPOINT ["/app"]\n').image_config
    assert cfg["config"]["Cmd"] == ["--help"]
    assert cfg["config"]["Entrypoint"] == ["/app"]


def test_shell_form_cmd_is_wrapped_in_shell_instruction() -> None:
    cfg = build('FROM scratch\nCMD echo hi\nSHELL ["/bin/bash", "-eo", "pipefail", "-c"]\n'
                'ENTRYPOINT exec app\n').image_config
    assert cfg["config"]["Entrypoint"] == ["/bin/bash", "-eo", "pipefail", "-c", "exec app"]
    assert cfg["config"]["Cmd"] == ["/bin/sh", "-c", "echo hi"]
    assert cfg["config"]["Shell"] == ["/bin/bash", "-eo", "pipefail", "-c"]
    assert cfg["config"]["ArgsEscaped"] is True  # BuildKit sets it on every CMD


def test_healthcheck_durations_in_nanoseconds() -> None:
    cfg = build("FROM scratch\nHEALTHCHECK --interval=5s --timeout=1m30s --retries=4 "
                "CMD curl -f http://localhost/\n").image_config
    hc = cfg["config"]["Healthcheck"]
    assert hc["Test"] == ["CMD-SHELL", "curl -f http://localhost/"]
    assert hc["Interval"] == 5_000_000_000
    assert hc["Timeout"] == 90_000_000_000
    assert hc["Retries"] == 4
    assert "StartPeriod" not in hc


def test_healthcheck_none() -> None:
    cfg = build("FROM scratch\nHEALTHCHECK NONE\n").image_config
    assert cfg["config"]["Healthcheck"] == {"Test": ["NONE"]}


def test_exposed_ports_ranges_and_protocols() -> None:
    cfg = build("FROM scratch\nARG P=8080\nEXPOSE 80 53/UDP $P 7000-7002/sctp\n").image_config
    assert set(cfg["config"]["ExposedPorts"]) == {
        "80/tcp", "53/udp", "8080/tcp", "7000/sctp", "7001/sctp", "7002/sctp"}


@pytest.mark.parametrize("spec", ["80/xyz", "99999", "90-80", "abc"])
def test_invalid_expose_is_an_error(spec: str) -> None:
    with pytest.raises(DockerfileError) as err:
        build(f"FROM scratch\nEXPOSE {spec}\n")
    assert err.value.location is not None and err.value.location.start_line == 2


def test_labels_inherit_and_cli_labels_only_on_final_image() -> None:
    resolver = FakeResolver({"base": image_config(Labels={"from": "base", "x": "1"})})
    text = 'FROM base AS one\nLABEL x=2 "k k"="v v"\nFROM one\nLABEL y=3\n'
    final = build(text, image_resolver=resolver, labels={"cli": "yes"}).image_config
    assert final["config"]["Labels"] == {"from": "base", "x": "2", "k k": "v v", "y": "3",
                                         "cli": "yes"}
    first = build(text, image_resolver=resolver, labels={"cli": "yes"},
                  target="one").image_config
    assert first["config"]["Labels"]["cli"] == "yes"  # the target is the final image
    plain = build(text, image_resolver=resolver).image_config
    assert "cli" not in plain["config"]["Labels"]


def test_volume_stopsignal_maintainer() -> None:
    cfg = build('FROM scratch\nVOLUME /data ["/logs"]\nVOLUME ["/a", "/b"]\n'
                "STOPSIGNAL SIGKILL\nMAINTAINER me <me@x>\n").image_config
    assert set(cfg["config"]["Volumes"]) >= {"/a", "/b", "/data"}
    assert cfg["config"]["StopSignal"] == "SIGKILL"
    assert cfg["author"] == "me <me@x>"


@pytest.mark.parametrize("sig", ["SIGNOPE", "0", "TERMX"])
def test_invalid_stopsignal_is_an_error(sig: str) -> None:
    with pytest.raises(DockerfileError, match="signal"):
        build(f"FROM scratch\nSTOPSIGNAL {sig}\n")


def test_history_entries_created_by_and_empty_layer() -> None:
    res = build("FROM base\nARG V=1\nENV E=2\nWORKDIR /\nWORKDIR /app\nRUN make\n"
                "COPY a b ./\nUSER nobody\nEXPOSE 80\nCMD [\"x\"]\n")
    assert history(res) == [
        ("ARG V=1", True),
        ("ENV E=2", True),
        ("WORKDIR /", True),
        ("WORKDIR /app", False),
        ("RUN |1 V=1 /bin/sh -c make # buildkit", False),
        ("COPY a b ./ # buildkit", False),
        ("USER nobody", True),
        ("EXPOSE [80/tcp]", True),
        ('CMD ["x"]', True),
    ]


def test_workdir_absolute_kept_as_written_relative_joined_and_cleaned() -> None:
    res = build("FROM scratch\nWORKDIR app\nWORKDIR sub/\nWORKDIR .\nWORKDIR /a/../b/\n"
                "WORKDIR c//d/.\n")
    assert [h for h, _ in history(res)] == [
        "WORKDIR /app", "WORKDIR /app/sub", "WORKDIR /app/sub", "WORKDIR /a/../b/",
        "WORKDIR /b/c/d"]
    assert res.image_config["config"]["WorkingDir"] == "/b/c/d"


def test_expose_history_sorted_before_expansion_duplicates_kept() -> None:
    res = build("FROM scratch\nARG P=9000\nEXPOSE 80 $P 443/tcp 80\n")
    assert history(res)[-1] == ("EXPOSE [9000/tcp 443/tcp 80/tcp 80/tcp]", True)


def test_healthcheck_history_is_go_struct_text() -> None:
    res = build("FROM scratch\nHEALTHCHECK --interval=5s --start-period=90s --retries=4 "
                "CMD wget -q x || exit 1\n")
    assert history(res)[-1][0] == (
        "HEALTHCHECK {Test:[CMD-SHELL wget -q x || exit 1] Interval:5s Timeout:0s "
        "StartPeriod:1m30s StartInterval:0s Retries:4}")


def test_empty_cmd_and_entrypoint_are_dropped() -> None:
    resolver = FakeResolver({"base": image_config(Cmd=["sh"], Entrypoint=["/e"])})
    cfg = build("FROM base\nENTRYPOINT []\nCMD []\n", image_resolver=resolver).image_config
    assert "Cmd" not in cfg["config"] and "Entrypoint" not in cfg["config"]
    assert cfg["config"]["ArgsEscaped"] is True


def test_base_history_kept_and_created_dropped() -> None:
    res = build("FROM base\nRUN x\n",
                image_resolver=FakeResolver({"base": image_config(layers=2)}))
    entries = res.image_config["history"]
    assert [h["created_by"] for h in entries[:2]] == ["base layer 0", "base layer 1"]
    assert "created" not in res.image_config


def test_source_date_epoch_sets_history_times() -> None:
    res = build("FROM scratch\nENV A=1\n", source_date_epoch=1700000000)
    assert res.image_config["history"][-1]["created"] == "2023-11-14T22:13:20Z"
    res = build("FROM scratch\nENV A=1\n", build_args={"SOURCE_DATE_EPOCH": "0"})
    assert res.image_config["history"][-1]["created"] == "1970-01-01T00:00:00Z"


def test_explicit_target_platform_is_written_to_config() -> None:
    resolver = FakeResolver({"base": image_config(AMD64)})
    cfg = build("FROM base\n", image_resolver=resolver, target_platform=ARM64).image_config
    assert (cfg["os"], cfg["architecture"]) == ("linux", "arm64")


def test_onbuild_is_stored_unexpanded() -> None:
    cfg = build("FROM scratch\nARG X=1\nONBUILD RUN echo $X\nONBUILD COPY . /app\n").image_config
    assert cfg["config"]["OnBuild"] == ["RUN echo $X", "COPY . /app"]
    assert all("ONBUILD" not in h for h, _ in history(build("FROM scratch\nONBUILD RUN x\n")))
