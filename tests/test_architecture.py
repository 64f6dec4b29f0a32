"""The layers of docs/architecture.md hold: no import cycle, nothing imports upward, the library
never imports the CLI.

The graph is read from the source (``ast``), so every ``import`` counts: at module level, inside
a function, or under ``if TYPE_CHECKING``. A module that no rule below places fails the test
with the line to add, so a new module cannot slip in unplaced.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent
TOP = ("toolchain", "hdl", "firmware", "sim")

#: Layers, bottom up (docs/architecture.md). A module may import its own layer or lower ones.
LAYERS = ("model", "hdl", "compiler", "firmware", "host", "applications", "cli")

#: Module-name prefixes (after ``spikeforge.``) -> layer; the longest matching prefix wins.
PLACES = {
    "toolchain.fsutil": "model",
    "toolchain.ir": "model",
    "toolchain.reference": "model",
    "toolchain.codec": "model",
    "toolchain.netgen": "model",
    "toolchain.shrink": "model",
    "toolchain.tennlab": "model",
    "toolchain.nirio": "model",
    "toolchain.plot": "model",
    "toolchain": "model",  # the package's __init__
    "hdl": "hdl",
    "toolchain.compiler": "compiler",
    "firmware": "firmware",
    "toolchain.deploy": "host",
    "toolchain.backends": "host",
    "toolchain.faultcampaign": "host",
    "sim": "host",
    "toolchain.train": "applications",
    "toolchain.robot": "applications",
    "toolchain.cli": "cli",
}


def _modules() -> dict[str, Path]:
    mods = {}
    for top in TOP:
        for path in (ROOT / top).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


def _resolve(name: str, mods: dict[str, Path]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> tuple[nx.DiGraph, int, int]:
    """``(graph, import statements, of them inside functions)`` of the project's modules."""
    mods = _modules()
    g = nx.DiGraph()
    g.add_nodes_from(mods)
    total = inner = 0
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]

        def visit(node: ast.AST, in_function: bool, mod: str = mod, package: str = package) -> None:
            nonlocal total, inner
            for child in ast.iter_child_nodes(node):
                fn = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
                names: list[str] = []
                if isinstance(child, ast.Import):
                    names = [a.name for a in child.names]
                elif isinstance(child, ast.ImportFrom):
                    base = child.module or ""
                    if child.level:
                        up = package
                        for _ in range(child.level - 1):
                            up = up.rpartition(".")[0]
                        base = f"{up}.{base}" if base else up
                    # ``from pkg import mod`` imports the module; ``from mod import name`` the module
                    names = [f"{base}.{a.name}" if f"{base}.{a.name}".removeprefix("spikeforge.") in mods
                             else base for a in child.names]
                found = set()
                for n in names:
                    n = n.removeprefix("spikeforge.")
                    if n.split(".")[0] in TOP:
                        target = _resolve(n, mods)
                        if target and target != mod:
                            found.add(target)
                for target in found:
                    g.add_edge(mod, target)
                    total += 1
                    inner += fn
                visit(child, fn)

        visit(tree, False)
    return g, total, inner


def layer_of(mod: str) -> str | None:
    best = max((p for p in PLACES if mod == p or mod.startswith(p + ".")), key=len, default=None)
    return PLACES[best] if best else None


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    return import_graph()[0]


def test_every_module_has_a_layer(graph):
    unplaced = sorted(m for m in graph if layer_of(m) is None)
    assert not unplaced, f"place these modules in tests/test_architecture.py PLACES: {unplaced}"


def test_no_import_cycle(graph):
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert not cycles, f"import cycles (imports inside functions count): {cycles}"


def test_nothing_imports_upward(graph):
    rank = {name: k for k, name in enumerate(LAYERS)}
    upward = [f"{a} ({layer_of(a)}) -> {b} ({layer_of(b)})" for a, b in graph.edges
              if rank[layer_of(b)] > rank[layer_of(a)]]
    assert not upward, "imports against the layers:\n" + "\n".join(sorted(upward))


def test_library_never_imports_the_cli(graph):
    bad = [(a, b) for a, b in graph.edges if layer_of(b) == "cli" and layer_of(a) != "cli"]
    assert not bad, f"library modules import the CLI: {bad}"


def test_cli_commands_import_only_common_and_the_library(graph):
    """A command module imports the library and ``cli.common``, never another command module."""
    cli = [m for m in graph if layer_of(m) == "cli"]
    shared = {"toolchain.cli", "toolchain.cli.common", "toolchain.cli.app"}
    bad = [(a, b) for a, b in graph.edges
           if a in cli and b in cli and a not in shared and b not in shared]
    assert not bad, f"CLI command modules import each other: {bad}"


def test_the_checker_sees_cycles_and_upward_imports(tmp_path, monkeypatch):
    """The graph reader finds an import inside a function and a relative import."""
    pkg = tmp_path / "toolchain"
    (pkg / "train").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "ir.py").write_text("def f():\n    from .train import x\n")
    (pkg / "train" / "__init__.py").write_text("")
    (pkg / "train" / "x.py").write_text("from spikeforge.toolchain import ir\n")
    for top in TOP[1:]:
        (tmp_path / top).mkdir()
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    g, total, inner = import_graph()
    assert set(g.edges) == {("toolchain.ir", "toolchain.train.x"), ("toolchain.train.x", "toolchain.ir")}
    assert inner == 1 and total == 2
