"""The package's architecture, enforced: each layer imports only from the layers under it,
and no modules import each other in a circle (lazy imports inside functions count too)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import ampcore

PACKAGE = Path(__file__).resolve().parents[1] / "ampcore"

# The package root (docstring, version, LAYERS) imports nothing; then ampcore.LAYERS, bottom to
# top, the faces (command line, public API) being the modules at the package's top.
LAYER_ORDER = ("__init__", *ampcore.LAYERS[:-1], ("cli", "__main__", "api"))
LAYERS = tuple(names if isinstance(names, tuple) else (names,) for names in LAYER_ORDER)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every ampcore module ``path`` imports, wherever the import statement is."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("ampcore"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ampcore"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        # "from ampcore.x import y" names module ampcore.x.y when y is one, else ampcore.x
        edges[name] = {m for m in imports(path) if m in modules and m != name}
    return edges


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_top_level_entry_has_a_layer():
    entries = {p.stem if p.suffix == ".py" else p.name for p in PACKAGE.iterdir()
               if p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists())}
    assert entries <= set(RANK), f"not in LAYERS: {sorted(entries - set(RANK))}"


def test_top_level_modules_are_faces_only():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert modules == {"__init__", "__main__", "cli", "api"}


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in edges.items() for b in targets
                  if RANK[layer(b)] > RANK[layer(a)])


def test_no_import_from_a_higher_layer():
    assert upward_imports(graph()) == []


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def package_of(module: str) -> str:
    return module if (PACKAGE.parent / module.replace(".", "/")).is_dir() else module.rpartition(".")[0]


def test_no_import_circles():
    edges = graph()
    # A package's __init__ re-exporting its modules is not a circle with them.
    edges = {a: {b for b in targets if not (package_of(b) == a or b == package_of(a))}
             for a, targets in edges.items()}
    assert cycles(edges) == []


@pytest.mark.parametrize("edges, expected", [
    ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
])
def test_the_circle_finder_finds_circles(edges, expected):
    assert cycles(edges) == expected


def test_the_layer_check_flags_an_upward_import():
    assert upward_imports({"ampcore.core.errors": {"ampcore.train.run"}}) == [
        "ampcore.core.errors -> ampcore.train.run"]


def test_the_core_imports_without_torch():
    code = ("import sys, ampcore.core.errors, ampcore.core.files, ampcore.core.profiles, "
            "ampcore.core.registry, ampcore.core.versions; "
            "assert 'torch' not in sys.modules, 'the core imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
