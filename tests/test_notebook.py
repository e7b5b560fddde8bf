"""The quick-start notebook runs top to bottom."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


@pytest.mark.slow
def test_quickstart_notebook_runs():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # the cell's result (a warning may come first: no CJK font for the static map)
    def result(cell):
        return next(o for o in cell["outputs"]
                    if o.get("output_type") == "execute_result")["data"]["text/plain"]

    def cell_with(text):
        return next(c for c in nb.cells if c.cell_type == "code" and text in c.source)

    files = result(cell_with("plan.to_file"))
    assert "plan.gpkg" in files and "metrics.json" in files and "coverage.html" in files
    assert "workload.html" in files and "coverage.pdf" in files
    # the roster for the grid office, read back: codes and the columns to fill in
    roster = result(cell_with("roster_grids.csv"))
    assert "网格编码 code" in roster and "000000000001001" in roster
    # the adjusted plan: the handover lists the buildings of the unit moved by hand
    handover = result(cell_with("apply_edits"))
    assert "moved" in handover and "from_grid" in handover
