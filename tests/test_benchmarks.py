"""benchmarks/peers.py keeps working: its helpers on a tiny lattice.

gridmap always runs; the peers (GerryChain, spopt: the ``bench`` extra) only
when they are installed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
peers = pytest.importorskip("peers")


@pytest.fixture
def case():
    # 6 × 6 squares, weights 10-50, into 4 grids at ±10 %
    return peers.lattice_case(6, 4, tolerance=0.1)


def test_figures_of_a_known_plan(case):
    # left half / right half of the lattice: two rectangles of 3 × 6 cells
    col = np.arange(case.n) % 6
    labels = (col >= 3).astype(int)
    f = peers.figures(case, labels)
    assert f["grids"] == 2
    assert f["contiguous"] and f["split"] == 0
    # a 30 m × 60 m rectangle: 4π·1800 / 180²
    assert f["pp"] == pytest.approx(4 * np.pi * 1800 / 180**2)
    w = np.bincount(labels, weights=case.weight)
    assert f["max_dev"] == pytest.approx(np.abs(w / w.mean() - 1).max())


def test_figures_catch_a_grid_in_two_pieces(case):
    labels = np.zeros(case.n, dtype=int)
    labels[[0, 35]] = 1  # opposite corners: one grid, two pieces
    f = peers.figures(case, labels)
    assert not f["contiguous"] and f["split"] == 1


def test_gridmap_in_a_child_process(case):
    res = peers.run_capped("gridmap", case, cap=120)
    assert res["status"] == "ok", res
    f = peers.figures(case, res["labels"])
    assert f["grids"] == case.k
    assert f["contiguous"]
    assert f["out"] == 0 and f["max_dev"] <= case.tolerance
    rows = peers.run_case(case, cap=120, seed=0, timed_out={}, command=False)
    assert rows[0][1] == peers.LABELS["gridmap"] and rows[0][3] == "1.0"
    md = peers.markdown(rows)
    assert md.count("\n") == len(rows) + 1 and "gridmap partition_graph" in md


def test_a_method_over_its_cap_is_stopped(case, monkeypatch):
    def slow(case, seed=0):
        import time

        return lambda: time.sleep(30) or np.zeros(case.n, dtype=int)

    monkeypatch.setitem(peers.RUNNERS, "gridmap", slow)
    res = peers.run_capped("gridmap", case, cap=0.5)
    assert res["status"] == "timeout" and res["wall"] < 30


@pytest.mark.parametrize("method", ["gerrychain", "maxp", "skater", "azp", "region_kmeans"])
def test_peer_on_the_same_graph(case, method):
    if importlib.util.find_spec(peers.IMPORTS[method]) is None:
        pytest.skip(f"{peers.IMPORTS[method]} not installed (pip install -e '.[bench]')")
    res = peers.run_capped(method, case, cap=120)
    assert res["status"] == "ok", res.get("trace", res)
    f = peers.figures(case, res["labels"])
    assert f["grids"] >= 1 and np.isfinite(f["pp"])
    if method != "maxp":  # max-p chooses its own number of regions
        assert f["grids"] == case.k


def test_docstring_examples():
    import doctest

    assert doctest.testmod(peers, optionflags=doctest.ELLIPSIS).failed == 0
