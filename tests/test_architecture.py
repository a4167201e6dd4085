"""The import graph keeps the house plan: arrows point down the layers, and no circles.

Every ``import`` of a ``buildkit_py`` module counts, wherever it is written (top of the
file, inside a function, under ``TYPE_CHECKING``): each is a dependency a reader has to
follow. ``docs/architecture.md`` draws the same layers.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "buildkit_py"

# Top-level packages (and modules) from the bottom up. A module may import its own
# package and anything on a lower row; packages on one row do not import each other.
LAYERS: list[set[str]] = [
    {"errors"},
    {"gostrings", "lazy_exports", "rootpath", "units", "sqlitedb", "deferred"},
    {"platforms", "config"},
    {"llb", "content", "snapshot", "executor"},
    {"solver", "registry"},
    {"api"},
    {"frontend", "exporter"},
    {"worker"},
    {"source", "imagetools"},
    {"remotecache"},
    {"builder"},
    {"session"},
    {"client", "control"},
    {"cli"},
    {"__main__"},
]
RANK = {name: i for i, row in enumerate(LAYERS) for name in row}


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in PKG.rglob("*.py"):
        if path.name.endswith("_pb2.py") or path.name.endswith("_pb2_grpc.py"):
            continue  # generated: they import only each other and protobuf
        parts = path.relative_to(PKG.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _generated(name: str) -> str | None:
    """The generated protobuf module ``name`` lies in, if any: a leaf of the graph (it
    imports only protobuf), not an import of its package."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        if part.endswith(("_pb2", "_pb2_grpc")):
            return ".".join(parts[: i + 1])
    return None


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the buildkit_py modules it imports (a name imported from a package
    counts as that submodule when it is one)."""

    def resolve(name: str) -> str | None:
        generated = _generated(name)
        if generated is not None:
            return generated
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    targets.append(sub if sub in modules or _generated(sub) else base)
            for target in targets:
                if target.startswith("buildkit_py"):
                    found = resolve(target)
                    if found is not None and found != name:
                        graph[name].add(found)
    return graph


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "buildkit_py"


def test_every_package_has_a_layer() -> None:
    tops = {_top(m) for m in _modules()} - {"buildkit_py"}
    assert tops <= set(RANK), f"place in LAYERS (and docs/architecture.md): {tops - set(RANK)}"


def test_imports_point_down_the_layers() -> None:
    modules = _modules()
    bad = []
    for source, targets in sorted(_imports(modules).items()):
        for target in sorted(targets):
            a, b = _top(source), _top(target)
            if a == b or "buildkit_py" in (a, b):
                continue
            if RANK.get(a, -1) <= RANK.get(b, -1):
                bad.append(f"{source} -> {target}")
    assert not bad, "imports that point up or sideways:\n" + "\n".join(bad)


def test_no_import_circles() -> None:
    modules = _modules()
    graph = _imports(modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for m in sorted(modules):
        if m not in index:
            visit(m)
    assert not circles, "modules that import each other (directly or around a circle):\n" + \
        "\n".join("  " + ", ".join(c) for c in circles)
