"""``bkpy du`` shows a cache mount as buildx shows BuildKit's (recorded from the referee in
``testdata/screens/du.json`` by ``python3 -m tests.e2e.record_screens du``)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import make_runner
from tests.e2e.screens_cases import du_screen, write_du_context

RECORDED = json.loads((Path(__file__).resolve().parents[2] / "testdata" / "screens"
                       / "du.json").read_text())


def test_du_shows_a_cache_mount_as_buildx_does(tmp_path: Path) -> None:
    cache_id, nonce = "du-screen", "n0"
    bkpy = make_runner(tmp_path / "state")
    busy = write_du_context(tmp_path / "ctx", cache_id, nonce)
    bkpy("build", "--progress", "quiet", "--build-context", f"busy={busy}",
         str(tmp_path / "ctx"))
    # the only cache mount of a fresh root (the RUN step's own record names the id too)
    selected = ("--filter", "type=exec.cachemount")
    verbose = du_screen(bkpy("du", "--verbose", *selected).out, cache_id, nonce)
    table = du_screen(bkpy("du", *selected).out, cache_id, nonce)
    # the one difference kept (README, "What differs"): BuildKit's Dockerfile frontend
    # prefixes a cache id with "/" in the mount's LLB, and so in its description
    expected = [line.replace('with id "/{CACHE_ID}"', 'with id "{CACHE_ID}"')
                for line in RECORDED["verbose"]]
    assert verbose == expected
    assert table == RECORDED["table"]
