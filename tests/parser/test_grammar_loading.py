"""Where the grammar comes from, the compiled-table cache, and parse speed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from buildkit_py.frontend.dockerfile import parse_dockerfile
from buildkit_py.frontend.dockerfile.parser import grammar
from tests.parser.conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
from parse_bench import generate


def test_grammar_is_a_lark_file_with_both_escape_variants() -> None:
    directory = Path(grammar.grammar_dir())
    assert (directory / "dockerfile.lark").is_file()
    assert (directory / "dockerfile_backtick.lark").is_file()
    text = (directory / "dockerfile.lark").read_text()
    for rule in ("run_instr", "env_instr", "heredoc_scan", "FLAG", "JSON_ARRAY", "KV_PAIR"):
        assert rule in text


def test_tables_come_from_lark_for_the_grammar_files(tmp_path: Path) -> None:
    from lark import Lark

    from buildkit_py.frontend.dockerfile.parser.lalr import tables_from_lark

    directory = Path(grammar.grammar_dir())
    lark = Lark.open(str(directory / "dockerfile.lark"), parser="lalr", start=grammar.START_RULES)
    tables = tables_from_lark(lark)
    assert {"run_instr", "start"} <= {origin for origin, _ in tables["rules"]}
    assert "FLAG" in tables["terminals"]


def _fresh_python(code: str, cache_home: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, XDG_CACHE_HOME=str(cache_home))
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
        check=False,
    )


PROBE = (
    "import sys\n"
    "from buildkit_py.frontend.dockerfile import parse_dockerfile, dump_ast\n"
    "print(dump_ast(parse_dockerfile('# escape=`\\nFROM a\\nRUN b `\\n c\\n')))\n"
    "print('lark' in sys.modules)\n"
)


def test_cache_is_written_then_used_without_importing_lark(tmp_path: Path) -> None:
    first = _fresh_python(PROBE, tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ['(from "a")', '(run "b  c")', "True"]
    assert list((tmp_path / "bkpy").glob("dockerfile_backtick-*.tables"))
    second = _fresh_python(PROBE, tmp_path)
    assert second.stdout.splitlines() == ['(from "a")', '(run "b  c")', "False"]


def test_corrupt_cache_is_rebuilt(tmp_path: Path) -> None:
    assert _fresh_python(PROBE, tmp_path).returncode == 0
    for f in (tmp_path / "bkpy").glob("*.tables"):
        f.write_bytes(b"garbage")
    again = _fresh_python(PROBE, tmp_path)
    assert again.returncode == 0 and again.stdout.splitlines()[:2] == ['(from "a")', '(run "b  c")']


def test_cache_dir_that_cannot_be_created_still_parses(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = _fresh_python(PROBE, blocker)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ['(from "a")', '(run "b  c")']


def test_parse_time_grows_linearly() -> None:
    parse_dockerfile("FROM a\n")
    small, big = generate(2000), generate(8000)

    def cpu(data: str) -> float:
        best = float("inf")
        for _ in range(3):
            start = time.process_time()
            parse_dockerfile(data)
            best = min(best, time.process_time() - start)
        return best

    t_small, t_big = cpu(small), cpu(big)
    assert t_big < 1.0, f"8,000 lines took {t_big:.2f}s of CPU"
    assert t_big / max(t_small, 1e-3) < 7, (t_small, t_big)


def test_installed_wheel_loads_grammar_from_package_data(tmp_path: Path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", str(tmp_path),
         str(REPO)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    [wheel] = tmp_path.glob("*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        assert "buildkit_py/_grammar/dockerfile.lark" in zf.namelist()
        zf.extractall(site)
    code = (
        "from buildkit_py.frontend.dockerfile.parser import grammar, parse_dockerfile, dump_ast\n"
        "print(grammar.grammar_dir())\n"
        "print(dump_ast(parse_dockerfile('FROM a\\nRUN b\\n')))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(site), XDG_CACHE_HOME=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
        timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    where, *dump = proc.stdout.splitlines()
    assert Path(where) == site / "buildkit_py" / "_grammar"
    assert dump == ['(from "a")', '(run "b")']
