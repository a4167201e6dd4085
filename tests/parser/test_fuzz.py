"""Random and mutated Dockerfiles never crash the parser: success or DockerfileError only."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buildkit_py.errors import DockerfileError
from buildkit_py.frontend.dockerfile import dump_ast, load_dockerfile, parse_dockerfile
from tests.parser.conftest import CONFORMANCE, CORPUS, run_bkpy

SEEDS = [p.read_bytes() for p in sorted(CONFORMANCE.glob("*/Dockerfile"))] + [
    p.read_bytes() for p in sorted(CORPUS.glob("*/Dockerfile"))
]
FRAGMENTS = [
    b"\\", b"`", b"\n", b"\r\n", b"\t", b" ", b'"', b"'", b"[", b"]", b"=", b"--", b"<<EOF",
    b"<<-'X'", b"EOF\n", b"# escape=`\n", b"# syntax=x\n", b"--mount=type=cache,target=/x",
    b"--mount=type=secret,id=a,required", b"--from=0", b"--chown=1:1", b"--link",
    b"--interval=1s", b"--retries=-1", b"--bogus=1", b'["a", 1]', b'["a"]', b"ONBUILD ",
    b"FROM scratch AS x\n", b"HEALTHCHECK NONE", b"ENV a", b"ARG =", b"\xff", b"\xef\xbb\xbf",
    b"\x00", "\u2028".encode(),
]
KEYWORDS = [b"FROM", b"RUN", b"COPY", b"ADD", b"ENV", b"ARG", b"LABEL", b"CMD", b"SHELL",
            b"HEALTHCHECK", b"ONBUILD", b"USER", b"WORKDIR", b"VOLUME", b"EXPOSE", b"STOPSIGNAL"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.integers(0, 4))
        pos = draw(st.integers(0, len(data)))
        if op == 0 and data:  # delete a run of bytes
            end = min(len(data), pos + draw(st.integers(1, 8)))
            del data[pos:end]
        elif op == 1 and data:  # duplicate a run of bytes
            end = min(len(data), pos + draw(st.integers(1, 40)))
            data[pos:pos] = data[pos:end]
        elif op == 2:  # random bytes
            data[pos:pos] = draw(st.binary(min_size=1, max_size=6))
        elif op == 3:  # a syntax fragment
            data[pos:pos] = draw(st.sampled_from(FRAGMENTS))
        else:  # a new line with a keyword and random flags
            flags = b" ".join(draw(st.lists(st.sampled_from(FRAGMENTS[15:28]), max_size=3)))
            line = draw(st.sampled_from(KEYWORDS)) + b" " + flags + b" x y\n"
            data[pos:pos] = line
    return bytes(data)


random_text = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS + KEYWORDS), st.binary(max_size=10)), max_size=40
).map(b"".join)


def _must_not_crash(data: bytes) -> None:
    try:
        dump_ast(parse_dockerfile(data))
    except DockerfileError as err:
        assert err.location is not None or "no instructions" in err.message
        err.render()
    try:
        load_dockerfile(data)
    except DockerfileError as err:
        assert err.message
        err.render()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_dockerfiles_only_raise_dockerfile_errors(data: bytes) -> None:
    _must_not_crash(data)


@settings(max_examples=200, deadline=None)
@given(random_text)
def test_random_dockerfiles_only_raise_dockerfile_errors(data: bytes) -> None:
    _must_not_crash(data)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_cli_on_mutated_dockerfiles_exits_cleanly(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "Dockerfile"
        path.write_bytes(data)
        for sub in ("ast", "check"):
            proc = run_bkpy("dockerfile", sub, str(path))
            err = proc.stderr.decode(errors="replace")
            assert proc.returncode in (0, 1), err  # 1: a Dockerfile error, as buildx
            assert "Traceback" not in err and "internal error" not in err
