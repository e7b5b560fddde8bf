"""The page on how gridmap works inside (docs/inside.md) stays true to the code.

Every module it names exists, every module of the package is named in its table,
and every stage function it names is defined in the module it says.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "inside.md"
PACKAGE = ROOT / "src" / "gridmap"


def _modules() -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found.add(".".join(parts))
    return found


def _defined(module: str) -> set[str]:
    """The names a module defines at its top level (functions, classes, constants)
    and the methods of its classes."""
    path = PACKAGE.parent.joinpath(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
            if isinstance(node, ast.ClassDef):
                names |= {f"{node.name}.{m.name}" for m in node.body
                          if isinstance(m, ast.FunctionDef)}
    return names


def test_every_module_named_exists_and_every_module_is_named():
    text = PAGE.read_text(encoding="utf-8")
    modules = _modules()
    for name in set(re.findall(r"`(gridmap(?:\.\w+)*)`", text)):
        # a module, or a name defined in one (gridmap.delineation.make_plan)
        module, _, attr = name.rpartition(".")
        assert name in modules or (module in modules and attr in _defined(module)), name
    table = set(re.findall(r"^\| `(gridmap(?:\.[a-z_]+)*)` \|", text, flags=re.M))
    assert modules - table == set(), "modules the page's table does not name"


def test_every_stage_function_is_where_the_page_says():
    text = PAGE.read_text(encoding="utf-8")
    section = text.split("## The stages of a plan")[1].split("\n## ")[0]
    rows = [r for r in section.splitlines() if r.startswith("| ") and "(`gridmap" in r]
    assert len(rows) >= 9
    for row in rows:
        cell = row.split("|")[2]
        for names, module in re.findall(r"((?:`[\w.]+`(?:, )?)+) \(`(gridmap[\w.]*)`\)",
                                        cell):
            for name in re.findall(r"`([\w.]+)`", names):
                assert name in _defined(module), f"{name} is not in {module}"
