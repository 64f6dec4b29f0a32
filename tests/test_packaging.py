"""Every Python package folder under the four top-level folders is listed in pyproject.toml.

A sub-package missing from ``[tool.setuptools] packages`` imports in the source tree but is
left out of a wheel, so a user's ``pip install`` would break where the tests pass.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP = {"toolchain", "hdl", "firmware", "sim"}


def _declared() -> tuple[set[str], dict[str, str]]:
    doc = tomllib.loads((ROOT / "pyproject.toml").read_text())
    st = doc["tool"]["setuptools"]
    return set(st["packages"]), dict(st["package-dir"])


def test_every_package_folder_is_declared() -> None:
    packages, dirs = _declared()
    found = set()
    for top in TOP:
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT)
            found.add("spikeforge." + ".".join(rel.parts))
    missing = found - packages
    assert not missing, f"add to pyproject.toml [tool.setuptools] packages: {sorted(missing)}"
    for pkg in packages:
        folder = dirs.get(pkg)
        assert folder is not None, f"{pkg} has no [tool.setuptools.package-dir] entry"
        assert (ROOT / folder / "__init__.py").is_file(), f"{pkg} -> {folder} has no __init__.py"
        assert folder == "/".join(pkg.split(".")[1:]), f"{pkg} mapped to unexpected {folder}"
