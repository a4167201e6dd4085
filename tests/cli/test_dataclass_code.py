"""The stored dataclass methods (``buildkit_py.cli.dataclass_code``): a later process runs
the code an earlier one compiled, the same code ``exec`` compiles, and a table that is
damaged or from another interpreter is ignored, never trusted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# Defines a few dataclasses in a fresh process (with the table at argv[1] when given) and
# reports what the table did and the generated methods' code, plus their behaviour.
DRIVER = r"""
import dataclasses, hashlib, json, sys
from buildkit_py.cli import dataclass_code
if sys.argv[1] != "-":
    dataclass_code.install(sys.argv[1])

@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int = 2
    tags: tuple[str, ...] = ()

@dataclasses.dataclass
class Bag:
    items: list[int] = dataclasses.field(default_factory=list)
    name: str = dataclasses.field(default="bag", repr=False)

def fingerprint(cls):
    out = {}
    for name in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__"):
        fn = cls.__dict__.get(name)
        code = getattr(fn, "__code__", None)
        if code is not None:
            out[name] = hashlib.sha256(code.co_code + repr(code.co_consts).encode()
                                       + repr(code.co_names).encode()).hexdigest()
    return out

p = Point(1, tags=("a",))
try:
    p.x = 5
    frozen = False
except dataclasses.FrozenInstanceError:
    frozen = True
b = Bag()
b.items.append(3)
behaviour = [repr(p), p == Point(1, 2, ("a",)), hash(p) == hash(Point(1, 2, ("a",))), frozen,
             repr(b), Bag().items, dataclasses.replace(p, y=9).y]
table = dataclass_code._table
report = {"code": {"Point": fingerprint(Point), "Bag": fingerprint(Bag)},
          "behaviour": behaviour,
          "added": table.added if table else None,
          "entries": len(table.codes) if table else 0}
dataclass_code.save()
print(json.dumps(report))
"""


def _define(table: Path | None, **env: str) -> dict:
    out = subprocess.run([sys.executable, "-c", DRIVER, str(table) if table else "-"],
                         capture_output=True, text=True, check=True, timeout=60,
                         env={**{k: v for k, v in os.environ.items()
                                 if k != "PYTHONDONTWRITEBYTECODE"}, **env})
    return json.loads(out.stdout)


def test_a_later_process_runs_the_stored_code_which_is_what_exec_compiles(
        tmp_path: Path) -> None:
    table = tmp_path / "pycache" / "dataclass-code.bin"
    plain = _define(None)
    first = _define(table)
    assert first["added"] is True and table.is_file()
    second = _define(table)
    assert second["added"] is False  # nothing compiled: every method came from the table
    assert second["entries"] == first["entries"] > 0
    assert plain["code"] == first["code"] == second["code"]
    assert plain["behaviour"] == first["behaviour"] == second["behaviour"]
    assert plain["behaviour"] == ["Point(x=1, y=2, tags=('a',))", True, True, True,
                                  "Bag(items=[3])", [], 9]


def test_a_damaged_or_foreign_table_is_ignored_and_written_again(tmp_path: Path) -> None:
    table = tmp_path / "dataclass-code.bin"
    good = _define(table)
    stored = table.read_bytes()
    for damaged in (b"", b"garbage", stored[:len(stored) // 2],
                    b"bkpy-dataclass-code 1\n\x00\x00\x00\x00" + stored[26:]):
        table.write_bytes(damaged)
        again = _define(table)
        assert again["added"] is True  # compiled, as without a table
        assert again["code"] == good["code"] and again["behaviour"] == good["behaviour"]
        assert table.read_bytes() == stored


def test_pythondontwritebytecode_leaves_the_table_unwritten_but_read(tmp_path: Path) -> None:
    table = tmp_path / "dataclass-code.bin"
    unwritten = _define(table, PYTHONDONTWRITEBYTECODE="1")
    assert unwritten["added"] is True and not table.exists()
    _define(table)
    assert _define(table, PYTHONDONTWRITEBYTECODE="1")["added"] is False


def test_the_set_up_command_writes_the_table_for_the_whole_package(tmp_path: Path) -> None:
    """``python -m buildkit_py.cli.write_dataclass_code`` (run by scripts/setup.sh) stores
    every class a command may define, so a fresh ``bkpy`` process compiles none."""
    code = ("import sys\n"
            "from buildkit_py.cli import dataclass_code as d, write_dataclass_code as w\n"
            "d.table_path = lambda: sys.argv[1]\n"
            "w.main()\n")
    table = tmp_path / "table.bin"
    subprocess.run([sys.executable, "-c", code, str(table)], check=True, timeout=120,
                   env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    probe = ("import json, sys\n"
             "from buildkit_py.cli import dataclass_code as d\n"
             "d.install(sys.argv[1])\n"
             "import buildkit_py.cli.main, buildkit_py.builder.core, buildkit_py.client.embedded\n"
             "print(json.dumps([d._table.added, len(d._table.codes)]))\n")
    out = subprocess.run([sys.executable, "-c", probe, str(table)], capture_output=True,
                         text=True, check=True, timeout=60)
    added, entries = json.loads(out.stdout)
    assert added is False and entries > 500
