"""``bkpy prune --filter`` with buildx's filters, on the embedded builder and through bkpyd:
which records go, and the refusals (exit 2) of a filter bkpy cannot honour."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.control.conftest import MakeDaemon, client_env, import_busybox, run_bkpy

DOCKERFILE = "FROM busybox\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\n"


def _build(tmp_path: Path, env: dict[str, str]) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "a.txt").write_text("a\n")
    (ctx / "b.txt").write_text("b\n")
    run_bkpy("build", "--progress", "quiet", str(ctx), env=env)


def _records(env: dict[str, str]) -> dict[str, str]:
    """id -> description of every record ``bkpy du --verbose`` lists."""
    out: dict[str, str] = {}
    rid = ""
    for line in run_bkpy("du", "--verbose", env=env).out.splitlines():
        if line.startswith("ID:"):
            rid = line.split(None, 1)[1]
        elif line.startswith("Description:") and rid:
            out[rid] = line.split(None, 1)[1]
    return out


def _prune(env: dict[str, str], *filters: str) -> str:
    args = [a for f in filters for a in ("--filter", f)]
    return run_bkpy("prune", "-f", "--verbose", *args, env=env).out


def _check_filters(tmp_path: Path, env: dict[str, str]) -> None:
    _build(tmp_path, env)
    before = _records(env)
    local = {r for r in before if r.startswith(("local:", "context:"))}  # bkpyd: its copies
    assert local and len(before) > len(local)

    out = _prune(env, "type=source.local")  # the context transfers only
    assert set(_records(env)) == set(before) - local
    assert all(r in out for r in local)

    _build(tmp_path, env)
    rest = _records(env)
    copy_a = next(r for r, d in rest.items() if d.endswith("COPY a.txt /a.txt"))
    _prune(env, "description~=COPY a\\.txt", "type!=source.local")
    assert set(_records(env)) == set(rest) - {copy_a}

    # none matches: nothing goes (no record is shared; only cache mounts, which this
    # build has none of, are mutable)
    for flt in ("shared=true", "mutable=", "description=no such step", "until=1h"):
        kept = _records(env)
        _prune(env, flt)
        assert _records(env) == kept, flt

    regular = next(r for r in _records(env) if r.startswith("snap:"))
    _prune(env, f"id={regular[5:20]}")  # id: by expression, as buildx asks BuildKit
    assert regular not in _records(env)


@pytest.mark.parametrize(("flt", "message"), [
    ("nosuch=x", 'ERROR: unknown prune filter "nosuch"'),
    ("parents=x", 'ERROR: prune filter "parents" is not supported'),
    ("type=bogus", 'ERROR: prune filter type==bogus: unknown record type "bogus"'),
    ("until=soon", "ERROR: \"until\" filter expects a duration (e.g., '24h')"),
    ("inuse", 'ERROR: invalid argument "inuse" for "--filter" flag: bad format of filter '
              "(expected name=value)"),
    ("id=[", "ERROR: prune filter: invalid filter 'id~=[': unterminated character set"),
])
def test_refused_filters(tmp_path: Path, flt: str, message: str) -> None:
    run = run_bkpy("prune", "-f", "--filter", flt, env=client_env(tmp_path), check=False)
    assert run.code == 2, run.err
    assert message in run.err
    assert "Traceback" not in run.err


def test_two_untils_and_conflicts(tmp_path: Path) -> None:
    env = client_env(tmp_path)
    run = run_bkpy("prune", "-f", "--filter", "until=1h", "--filter", "unused-for=2h",
                   env=env, check=False)
    assert run.code == 2 and 'conflicting filters "until" and "unused-for"' in run.err
    run = run_bkpy("prune", "-f", "--filter", "type=regular", "--filter", "type=source.local",
                   env=env, check=False)
    assert run.code == 2 and '"type" filter expects only one value' in run.err


def test_filters_on_the_embedded_builder(tmp_path: Path, busybox_layout: Path) -> None:
    env = client_env(tmp_path)
    import_busybox(Path(env["BKPY_ROOT"]), busybox_layout)
    _check_filters(tmp_path, env)


def test_filters_through_bkpyd(tmp_path: Path, make_daemon: MakeDaemon) -> None:
    daemon = make_daemon()
    env = client_env(tmp_path, daemon)
    _check_filters(tmp_path, env)
