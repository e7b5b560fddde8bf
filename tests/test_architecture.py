"""The shape of the package: no import cycle, no function longer than a page or so.

Both tests read the source with :mod:`ast`; nothing of gridmap is imported, so a
cycle is found even when Python would put up with it (an import inside a function
runs late and hides a cycle from the interpreter, not from a reader).

Imports counted as edges of the module graph (``gridmap.a -> gridmap.b``):

- at the top of a module and inside functions, methods and ``try`` blocks alike;
- absolute (``import gridmap.io``, ``from gridmap._errors import X``) and
  relative (``from .io import X``, ``from ..parallel import X``);
- ``from P import n`` is an edge to ``P``, and also to ``P.n`` when ``P.n`` is a
  module: ``from . import io`` in ``gridmap.cli`` means ``gridmap.io``, and
  ``from .partition import refine`` means ``gridmap.partition`` (whose
  ``__init__`` imports ``gridmap.partition.refine`` itself);
- a package's ``__init__`` importing its own submodules, like any other import.

Not counted:

- imports under ``if TYPE_CHECKING:`` (the ``else:`` branch is counted): they
  never run, they only give type checkers the name of a type, so maps can say
  their argument is a ``GridPlan`` without importing the plan's module;
- the import of an enclosing package that Python does before every submodule
  (``gridmap/__init__.py`` runs before ``gridmap.io`` does, whoever imports it),
  and ``from . import x`` in ``gridmap.a`` is not an edge to ``gridmap`` itself:
  these hold for every module alike and say nothing about the design.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import networkx as nx

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "gridmap"

#: modules being restructured under issue 20 (the delineation pipeline): cycles
#: through them are not checked until that work lands, then this set is emptied
#: (delineation -> repartition -> delineation, plan -> repartition -> plan)
IN_PROGRESS: set[str] = set()

#: the longest a function may be, in lines, docstring included (issue 20)
MAX_FUNCTION_LINES = 150


def _modules() -> dict[str, tuple[Path, bool]]:
    """Every module of the package: dotted name -> (file, is a package)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found[".".join(parts)] = (path, is_package)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING``."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: anywhere but under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _ancestors(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def _targets(modules: dict[str, tuple[Path, bool]], name: str,
             node: ast.Import | ast.ImportFrom) -> set[str]:
    """The gridmap modules one import statement of module ``name`` imports."""
    if isinstance(node, ast.Import):
        found = set()
        for alias in node.names:
            # "import gridmap.partition.refine": the deepest module named
            parts = alias.name.split(".")
            for i in range(len(parts), 0, -1):
                if ".".join(parts[:i]) in modules:
                    found.add(".".join(parts[:i]))
                    break
        return found
    package = name if modules[name][1] else name.rpartition(".")[0]
    source = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
        if node.level else node.module or ""
    found = set()
    if source in modules and source not in _ancestors(name):
        found.add(source)
    for alias in node.names:
        if f"{source}.{alias.name}" in modules:
            found.add(f"{source}.{alias.name}")
    return found


def _imported(modules: dict[str, tuple[Path, bool]], name: str, text: str) -> dict[str, int]:
    """The gridmap modules that module ``name`` (source ``text``) imports, each
    with the line of its first import."""
    found: dict[str, int] = {}
    for node in _imports(ast.parse(text)):
        for target in _targets(modules, name, node):
            if target != name:
                found[target] = min(found.get(target, node.lineno), node.lineno)
    return found


def import_graph() -> nx.DiGraph:
    """The gridmap modules (nodes) and which imports which (edges)."""
    graph = nx.DiGraph()
    modules = _modules()
    for name, (path, _) in modules.items():
        graph.add_node(name)
        imported = _imported(modules, name, path.read_text(encoding="utf-8"))
        for target, line in imported.items():
            graph.add_edge(name, target, line=line)
    return graph


def _describe(graph: nx.DiGraph, cycles: list[list[str]]) -> str:
    """One line per cycle: each module, and the line of its import of the next."""
    lines = []
    for cycle in sorted(cycles, key=lambda c: (len(c), c)):
        steps = [f"{a} (line {graph.edges[a, b]['line']})"
                 for a, b in zip(cycle, cycle[1:] + cycle[:1], strict=True)]
        lines.append("  " + " -> ".join(steps) + f" -> {cycle[0]}")
    return "\n".join(lines)


def test_imports_are_read_as_python_runs_them():
    """The rules above, on a module written for the purpose."""
    modules = {name: (Path(), name in ("gridmap", "gridmap.partition")) for name in (
        "gridmap", "gridmap.io", "gridmap.plan", "gridmap.parallel", "gridmap.render",
        "gridmap.workload", "gridmap._errors", "gridmap.partition",
        "gridmap.partition.refine", "gridmap.partition.flow")}
    render = """
from typing import TYPE_CHECKING
import numpy as np
from . import io
from .partition import UnitGraph
from gridmap.parallel import community_map
if TYPE_CHECKING:
    from .plan import GridPlan
else:
    import gridmap.partition.refine
def draw():
    from . import __version__
    class Layer:
        def add(self):
            try:
                from .workload import grid_workload
            except ImportError:
                pass
"""
    assert _imported(modules, "gridmap.render", render) == {
        "gridmap.io": 4, "gridmap.partition": 5, "gridmap.parallel": 6,
        "gridmap.partition.refine": 10, "gridmap.workload": 16}
    # in a package's __init__, "." is the package itself; ".." its parent
    init = "from .refine import refine\nfrom .. import _errors\nfrom . import flow\n"
    assert _imported(modules, "gridmap.partition", init) == {
        "gridmap.partition.refine": 1, "gridmap._errors": 2, "gridmap.partition.flow": 3}
    # and in a module of the package, "." is its package
    flow = "from .refine import connected_without\nfrom ..plan import GridPlan\n"
    assert _imported(modules, "gridmap.partition.flow", flow) == {
        "gridmap.partition.refine": 1, "gridmap.plan": 2}


def test_the_graph_holds_the_package():
    graph = import_graph()
    assert graph.has_edge("gridmap", "gridmap.plan")  # a package's __init__ counts
    assert graph.has_edge("gridmap.plan", "gridmap.render")  # inside a method
    assert not graph.has_edge("gridmap.render", "gridmap.plan")  # TYPE_CHECKING only


def test_no_import_cycle():
    """No module imports, directly or through others, one that imports it back."""
    graph = import_graph()
    checked = graph.subgraph(set(graph) - IN_PROGRESS)
    cycles = list(nx.simple_cycles(checked))
    assert not cycles, ("import cycles (each module with the line of its import of "
                        "the next):\n" + _describe(graph, cycles))


def _functions() -> list[tuple[str, str, int]]:
    """(file, function, lines) of every function and method, nested ones included."""
    found = []
    for path, _ in _modules().values():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((str(path.relative_to(SRC)), node.name,
                              node.end_lineno - node.lineno + 1))
    return found


def test_no_function_longer_than_150_lines():
    too_long = sorted((f for f in _functions() if f[2] > MAX_FUNCTION_LINES),
                      key=lambda f: -f[2])
    assert not too_long, (
        f"functions over {MAX_FUNCTION_LINES} lines:\n"
        + "\n".join(f"  {path}:{name}: {n}" for path, name, n in too_long))
