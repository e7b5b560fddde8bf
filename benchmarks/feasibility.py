"""Is a grid out of tolerance fixable locally?  An exact check of a written plan.

    python benchmarks/feasibility.py OUT/plan.gpkg [--tolerance 0.1] [--by households]

For every ordinary grid out of tolerance in a plan gridmap wrote, this asks an
exact question of the units around it: is there *any* way to share the units of
that grid and its neighbouring grids between the same number of grids so that
every one is contiguous and within the band?  The region grows one grid at a
time (always by the neighbour that brings its average closest to the mean) up
to ``--max-grids`` grids and ``--max-units`` units; a unit may move to a grid
up to three units away.  Each question is a small mixed-integer programme,
settled by a depth-first search and, where that stops at its step limit, by
HiGHS (:func:`scipy.optimize.milp`):
:func:`gridmap.partition.exact.check_region`, which ``delineate`` runs too, on
programmes of up to 40 nodes (here of up to ``--max-units``).  The model:

* ``x[i,j]`` = 1 when unit ``i`` is in grid ``j``; every unit in one grid;
* each grid's weight within ``mean·(1±tolerance)``, the mean being the
  community mean of the ordinary (unflagged) grids, as in ``metrics.json``;
* contiguity by a single-commodity flow per grid: one root per grid sends flow
  along edges inside the grid and every other unit of the grid consumes one.

"infeasible" is a proof that no plan of those grids is balanced: the grid is
out of tolerance because of its units, not because the search missed a plan.
"found" means gridmap's search missed one (a defect worth reporting).  Only the
plan's files are read; the regions are grown here, independently of the plan.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from gridmap import read_plan
from gridmap.partition import UnitGraph
from gridmap.partition.exact import RegionLimits, check_region


def _contiguous(g: UnitGraph, labels: np.ndarray, grids: list[int]) -> bool:
    for h in grids:
        nodes = np.flatnonzero(labels == h)
        if len(nodes) == 0 or len(np.unique(g.components(nodes))) != 1:
            return False
    return True


def check(plan_path: str, *, by: str = "households", tolerance: float = 0.1,
          max_grids: int = 6, max_units: int = 80, node_limit: int = 2000) -> list[dict]:
    plan = read_plan(plan_path)
    units = plan.units.reset_index(drop=True)
    grids = plan.grids
    edges = [(a, b, d) for a, b, d in plan.graph.edges(data=True) if d.get("kind") != "none"]
    i = np.array([min(a, b) for a, b, _ in edges])
    j = np.array([max(a, b) for a, b, _ in edges])
    cut = np.array([d["length"] * d["cost"] for *_, d in edges])
    g = UnitGraph.from_edges(len(units), units[by].to_numpy(float), np.zeros((len(units), 2)),
                             i, j, cut)
    labels = units["grid_id"].to_numpy()
    # regions as large as asked: the programme may have a node per unit
    limits = RegionLimits(max_grids=max_grids, max_units=max_units, max_nodes=max_units,
                          node_limit=node_limit)
    flagged = grids["flag"].fillna("").astype(str) != ""
    rows = []
    for community, gc in grids[~flagged].groupby("community_id"):
        active = set(gc["grid_id"].tolist())
        mean = float(gc[by].mean())
        w = {h: float(g.weight[labels == h].sum()) for h in active}
        for gid in sorted(active, key=lambda h: (-abs(w[h] / mean - 1), h)):
            if abs(w[gid] / mean - 1) <= tolerance + 1e-9:
                continue
            t0 = time.perf_counter()
            r = check_region(g, labels, gid, active=active, weight=w, mean=mean,
                             tolerance=tolerance, limits=limits)
            dt = time.perf_counter() - t0
            if r.verdict == "found":
                ok = _contiguous(g, r.labels, r.grids)
                verdict = "found" if ok else "found (check contiguity)"
            elif r.verdict == "infeasible":
                verdict = f"infeasible ({dt:.1f} s)" if r.solved else "infeasible (total)"
                if r.reach is not None:
                    # ruled out only the plans that move units up to `reach` away
                    verdict += f", moving units up to {r.reach}"
            elif r.verdict == "limit":
                verdict = f"undecided ({dt:.1f} s)"
            else:
                verdict = r.verdict
            rows.append({"community": community, "grid_id": gid, "value": w[gid],
                         "deviation": w[gid] / mean - 1, "units": r.units,
                         "grids": len(r.grids), "verdict": verdict})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("plan")
    ap.add_argument("--by", default="households")
    ap.add_argument("--tolerance", type=float, default=0.1)
    ap.add_argument("--max-grids", type=int, default=6)
    ap.add_argument("--max-units", type=int, default=80)
    a = ap.parse_args(argv)
    rows = check(a.plan, by=a.by, tolerance=a.tolerance, max_grids=a.max_grids,
                 max_units=a.max_units)
    print(f"{'grid':>6} {'value':>8} {'dev':>7} {'region':>14}  verdict")
    for r in rows:
        print(f"{r['grid_id']:>6} {r['value']:>8.0f} {r['deviation']:>+7.1%} "
              f"{r['units']:>4} u/{r['grids']:>2} g  {r['verdict']}")
    if not rows:
        print("no ordinary grid out of tolerance")
    return 0


if __name__ == "__main__":
    sys.exit(main())
