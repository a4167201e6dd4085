"""Our own parse cases in testdata/dockerfiles/parse: expected.ast or expected.error."""

from __future__ import annotations

import pytest

from buildkit_py.errors import DockerfileError
from buildkit_py.frontend.dockerfile import dump_ast, load_dockerfile, parse_dockerfile
from tests.parser.conftest import CORPUS

CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())


def test_corpus_covers_the_main_areas() -> None:
    for needed in ("basic", "heredoc-run", "heredoc-copy", "escape-backtick", "flags-all"):
        assert needed in CASES
    assert all(
        (CORPUS / c / "expected.ast").exists() != (CORPUS / c / "expected.error").exists()
        for c in CASES
    )


@pytest.mark.parametrize("case", CASES)
def test_corpus_case(case: str) -> None:
    folder = CORPUS / case
    data = (folder / "Dockerfile").read_bytes()
    if (folder / "expected.ast").exists():
        result = parse_dockerfile(data)
        assert dump_ast(result) + "\n" == (folder / "expected.ast").read_text(encoding="utf-8")
        return
    spec = dict(
        line.split(": ", 1) for line in (folder / "expected.error").read_text().splitlines()
    )
    with pytest.raises(DockerfileError) as info:
        load_dockerfile(data)
    err = info.value
    assert spec["error"] in err.message
    assert err.location is not None
    assert err.location.start_line == int(spec["line"])
    assert f"Dockerfile:{spec['line']}" in err.render()


def test_basic_corpus_file_loads_into_three_stages() -> None:
    df = load_dockerfile((CORPUS / "basic" / "Dockerfile").read_bytes())
    assert [s.name for s in df.stages] == ["build", "test", "release"]
    assert [a.key for m in df.meta_args for a in m.args] == ["GO_VERSION"]
