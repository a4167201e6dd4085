"""A failed build's whole error screen is buildx's, as the newest buildx and BuildKit
printed it for the same builds (recorded by ``tests/e2e/record_error_screens.py`` into
``testdata/screens/error-screens.json``):

- what fails once the build is asked for is worded ``ERROR: failed to build: ...``
  (``failed to solve: ...`` inside it for the solve's own errors);
- a failed step is framed (``------`` / `` > STEP:`` / its logs / ``------``) as part of the
  progress, so not in quiet and rawjson modes, before the warnings summary; a missing
  base image frames ``[internal] load metadata for REF``, with BuildKit's wording;
- ``-q`` with a ``--progress`` other than auto, quiet or none is refused.

bkpy's own ``hint:`` lines after the ERROR line are left out of the comparison."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.e2e.conftest import Bkpy
from tests.e2e.error_screens_cases import BUILDS, CASES, screen, shows_progress
from tests.registry.fixtures import RegistryServer

EXPECTED = json.loads((Path(__file__).resolve().parents[2] / "testdata" / "screens" /
                       "error-screens.json").read_text())
# buildx exits 1 on every error; bkpy keeps 2 for a flag it cannot use
EXIT_KEPT = {"annotation-type-unknown": 2, "platform-unparsable": 2}
# buildx colours its warnings summary even off a terminal (bkpy only on one)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def base(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """busybox in a registry where the referee found it (the missing base image is a name
    next to it that the registry does not have)."""
    from tests.images import push_layout, write_busybox_layout

    layout = write_busybox_layout(tmp_path_factory.mktemp("bb") / "layout", ("amd64",))
    return push_layout(layout, f"{registry.host}/screens/busybox")


def _build(bkpy: Bkpy, tmp_path: Path, dockerfile: str, *args: str,
           env: dict[str, str] | None = None) -> tuple[int, str, str]:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    r = bkpy("build", *args, "-o", f"type=local,dest={tmp_path / 'out'}", str(ctx),
             check=False, env=env)
    assert "Traceback" not in r.err
    return r.code, r.out, r.err


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_error_screen_is_buildx_s(bkpy: Bkpy, tmp_path: Path, registry: RegistryServer,
                                      base: str, case: str) -> None:
    dockerfile, args = CASES[case]
    code, out, err = _build(bkpy, tmp_path, dockerfile.replace("{BASE}", base), *args)
    want = EXPECTED[case]
    assert code == EXIT_KEPT.get(case, want["exit"]), err
    assert out == ""
    assert shows_progress(err) == want["progress"], err
    got = [line.replace(registry.host, "{REGISTRY}") for line in screen(err)
           if not line.startswith("hint: ")]
    assert got == [_ANSI.sub("", line) for line in want["screen"]]


def test_the_missing_base_image_reads_as_buildkit_s(bkpy: Bkpy, tmp_path: Path,
                                                     base: str) -> None:
    """The same, spelled out (``missing-base-plain`` in the recording)."""
    ref = f"{base}-nope"
    code, _, err = _build(bkpy, tmp_path, f"FROM {ref}\nRUN echo one\n", "--progress", "plain")
    assert code == 1
    assert f" ERROR: {ref}:latest: not found\n------\n" in err  # the step's own error
    assert err.index(f"------\n > [internal] load metadata for {ref}:latest:\n------\n"
                     "Dockerfile:1\n") > 0
    assert err.splitlines()[-2] == (
        f"ERROR: failed to build: failed to solve: {ref}: failed to resolve source metadata "
        f"for {ref}:latest: {ref}:latest: not found")


@pytest.mark.parametrize("args", [
    ("-q", "--progress", "quiet"), ("-q", "--progress", "none"), ("-q", "--progress", "auto"),
    ("-q",)])
def test_quiet_takes_the_quiet_modes(bkpy: Bkpy, tmp_path: Path, base: str,
                                     args: tuple[str, ...]) -> None:
    code, _, err = _build(bkpy, tmp_path, BUILDS.replace("{BASE}", base), *args)
    assert code == 0 and err == "", err


def test_quiet_ignores_buildkit_progress(bkpy: Bkpy, tmp_path: Path, base: str) -> None:
    """``BUILDKIT_PROGRESS`` is not ``--progress``: buildx builds quietly with it."""
    code, _, err = _build(bkpy, tmp_path, BUILDS.replace("{BASE}", base), "-q",
                          env={"BUILDKIT_PROGRESS": "plain"})
    assert code == 0 and err == "", err
    code, _, err = _build(bkpy, tmp_path, BUILDS.replace("{BASE}", base), "-q",
                          "--progress", "plain")
    assert (code, err) == (1, "ERROR: progress=plain and quiet cannot be used together\n")


def test_flag_errors_found_before_the_build_have_no_prefix(bkpy: Bkpy, tmp_path: Path) -> None:
    """buildx reads a --secret's syntax before the build starts: no ``failed to build: ``
    (it says ``unexpected key 'bogus' in 'bogus=1'``; bkpy words it its own way)."""
    code, _, err = _build(bkpy, tmp_path, "FROM scratch\n", "--secret", "bogus=1")
    assert code == 2 and err.startswith("ERROR: --secret 'bogus=1': ")
