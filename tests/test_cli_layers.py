"""The CLI sits on top: no library module imports it, and a command module imports only
library code and ``cli.common`` (never another command module), counting imports inside
functions."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = ROOT / "toolchain" / "cli"


def _imports(path: Path, package: str) -> set[str]:
    """Absolute names of every module ``path`` imports (top level and inside functions)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.add(name)
            out |= {f"{name}.{a.name}" for a in node.names}
    return out


def _package(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return "spikeforge." + ".".join(rel.parts[:-1])


def test_no_library_module_imports_the_cli() -> None:
    for folder in ("toolchain", "hdl", "firmware", "sim"):
        for path in (ROOT / folder).rglob("*.py"):
            if CLI in path.parents:
                continue
            bad = {m for m in _imports(path, _package(path)) if m.startswith("spikeforge.toolchain.cli")}
            assert not bad, f"{path.relative_to(ROOT)} imports the CLI: {sorted(bad)}"


def test_command_modules_import_no_other_command_module() -> None:
    commands = {p.stem for p in CLI.glob("*.py")} - {"__init__", "app", "common"}
    for path in CLI.glob("*.py"):
        if path.stem in ("__init__", "app"):
            continue
        names = _imports(path, "spikeforge.toolchain.cli")
        bad = {c for c in commands if c != path.stem and f"spikeforge.toolchain.cli.{c}" in names}
        assert not bad, f"toolchain/cli/{path.name} imports command module(s) {sorted(bad)}"
