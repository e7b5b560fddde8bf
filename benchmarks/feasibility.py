"""Is a grid out of tolerance fixable locally?  An exact check of a written plan.

    python benchmarks/feasibility.py OUT/plan.gpkg [--tolerance 0.1] [--by households]

For every ordinary grid out of tolerance in a plan gridmap wrote, this asks an
exact question of the units around it: is there *any* way to share the units of
that grid and its neighbouring grids between the same number of grids so that
every one is contiguous and within the band?  The region grows one grid at a
time (always by the neighbour that brings its average closest to the mean) up
to ``--max-grids`` grids and ``--max-units`` units; a unit may move to a grid
up to three units away.  Each question is a small mixed-integer programme
solved by HiGHS (:func:`scipy.optimize.milp`):

* ``x[i,j]`` = 1 when unit ``i`` is in grid ``j``; every unit in one grid;
* each grid's weight within ``mean·(1±tolerance)``, the mean being the
  community mean of the ordinary (unflagged) grids, as in ``metrics.json``;
* contiguity by a single-commodity flow per grid: one root per grid sends flow
  along edges inside the grid and every other unit of the grid consumes one.

"infeasible" is a proof that no plan of those grids is balanced: the grid is
out of tolerance because of its units, not because the search missed a plan.
"found" means gridmap's search missed one (a defect worth reporting).  The
checks are independent of gridmap's partitioner; only the plan's files are read.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from gridmap import read_plan
from gridmap.partition import UnitGraph


def _solve(
    g: UnitGraph,
    nodes: np.ndarray,
    current: np.ndarray,
    m: int,
    lo: float,
    hi: float,
    node_limit: int,
    reach: int = 3,
) -> np.ndarray | None | str:
    """Assign ``nodes`` to grids 0..m-1 within [lo, hi], contiguous; or None.

    A unit may stay in its grid or move to a grid within ``reach`` units of it:
    boundaries shift, grids do not jump, and the programme stays small.
    """
    n = len(nodes)
    loc = np.full(g.n, -1, dtype=np.int64)
    loc[nodes] = np.arange(n)
    em = (loc[g.i] >= 0) & (loc[g.j] >= 0)
    ea, eb = loc[g.i[em]], loc[g.j[em]]
    cut = g.cut[em]
    ne = len(ea)
    w = g.weight[nodes]
    big = float(n)

    allowed = [{int(current[i])} for i in range(n)]
    for _ in range(reach):
        grown = [set(s) for s in allowed]
        for a, b in zip(ea.tolist(), eb.tolist(), strict=True):
            grown[a] |= allowed[b]
            grown[b] |= allowed[a]
        allowed = grown
    pairs = [(i, j) for i in range(n) for j in sorted(allowed[i])]
    xi = {p: k for k, p in enumerate(pairs)}
    nxv = len(pairs)
    # variables: x (pairs) | r (pairs) | f (arc, grid) | y (edges)
    arcs = []
    for e in range(ne):
        a, b = int(ea[e]), int(eb[e])
        for j in sorted(allowed[a] & allowed[b]):
            arcs.append((a, b, j))
            arcs.append((b, a, j))
    of = 2 * nxv
    oy = of + len(arcs)
    nv = oy + ne

    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    lb: list[float] = []
    ub: list[float] = []

    def add(cs, vs, lo_, hi_):
        r = len(lb)
        rows.extend([r] * len(cs))
        cols.extend(cs)
        vals.extend(vs)
        lb.append(lo_)
        ub.append(hi_)

    by_grid: list[list[int]] = [[] for _ in range(m)]
    for (i, j), k in xi.items():
        by_grid[j].append(k)
    for i in range(n):
        cs = [xi[(i, j)] for j in sorted(allowed[i])]
        add(cs, [1.0] * len(cs), 1, 1)
    for j in range(m):
        ks = by_grid[j]
        add(ks, [float(w[pairs[k][0]]) for k in ks], lo, hi)
        add([nxv + k for k in ks], [1.0] * len(ks), 1, 1)
    for k in range(nxv):
        add([nxv + k, k], [1.0, -1.0], -np.inf, 0)
    # flow: inflow - outflow - x + big*r >= 0 at every (unit, grid)
    inflow: dict[tuple[int, int], list[int]] = {p: [] for p in pairs}
    outflow: dict[tuple[int, int], list[int]] = {p: [] for p in pairs}
    for q, (a, b, j) in enumerate(arcs):
        outflow[(a, j)].append(of + q)
        inflow[(b, j)].append(of + q)
        add([of + q, xi[(a, j)]], [1.0, -big], -np.inf, 0)
        add([of + q, xi[(b, j)]], [1.0, -big], -np.inf, 0)
    for p, k in xi.items():
        cs = inflow[p] + outflow[p] + [k, nxv + k]
        vs = [1.0] * len(inflow[p]) + [-1.0] * len(outflow[p]) + [-1.0, big]
        add(cs, vs, 0, np.inf)
    # y[e] >= x[a,j] - x[b,j] for every grid either end may take
    for e in range(ne):
        a, b = int(ea[e]), int(eb[e])
        for j in sorted(allowed[a] | allowed[b]):
            cs, vs = [oy + e], [1.0]
            if (a, j) in xi:
                cs.append(xi[(a, j)])
                vs.append(-1.0)
            if (b, j) in xi:
                cs.append(xi[(b, j)])
                vs.append(1.0)
            add(cs, vs, 0, np.inf)
            add(cs, [vs[0]] + [-v for v in vs[1:]], 0, np.inf)

    a_mat = coo_matrix((vals, (rows, cols)), shape=(len(lb), nv)).tocsr()
    c = np.zeros(nv)
    scale = float(cut.mean()) if ne and cut.mean() > 0 else 1.0
    c[oy:] = cut / scale
    # a small price on leaving the current grid keeps the repair local
    for i in range(n):
        c[xi[(i, int(current[i]))]] -= 0.5
    integrality = np.zeros(nv)
    integrality[: 2 * nxv] = 1
    upper = np.ones(nv)
    upper[of:oy] = big
    res = milp(
        c,
        constraints=LinearConstraint(a_mat, lb, ub),
        integrality=integrality,
        bounds=Bounds(np.zeros(nv), upper),
        options={"node_limit": node_limit, "disp": False},
    )
    if res.status == 2:
        return None
    if res.status != 0:
        # stopped at the limit: an incumbent found so far is not optimal, but
        # it is still a deterministic answer; use it if there is one
        return "limit" if res.x is None else _argmax(res.x, xi, n)
    return _argmax(res.x, xi, n)


def _argmax(x: np.ndarray, xi: dict[tuple[int, int], int], n: int) -> np.ndarray:
    sol = np.empty(n, dtype=np.int64)
    best = np.full(n, -1.0)
    for (i, j), k in xi.items():
        if x[k] > best[i]:
            best[i], sol[i] = x[k], j
    return sol


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
    flagged = grids["flag"].fillna("").astype(str) != ""
    rows = []
    for community, gc in grids[~flagged].groupby("community_id"):
        active = set(gc["grid_id"].tolist())
        mean = float(gc[by].mean())
        w = {h: float(g.weight[labels == h].sum()) for h in active}
        lo, hi = mean * (1 - tolerance), mean * (1 + tolerance)
        for gid in sorted(active, key=lambda h: (-abs(w[h] / mean - 1), h)):
            if abs(w[gid] / mean - 1) <= tolerance + 1e-9:
                continue
            region, total, verdict, size = [gid], w[gid], "not checked", (0, 1)
            while len(region) < max_grids:
                ring: set[int] = set()
                for h in region:
                    ring |= g.adjacent_labels(labels, np.flatnonzero(labels == h)) & active
                ring -= set(region)
                if not ring:
                    break
                m = len(region) + 1
                h = min(ring, key=lambda x: (abs((total + w[x]) / (m * mean) - 1), x))
                region.append(h)
                total += w[h]
                nodes = np.flatnonzero(np.isin(labels, region))
                if len(nodes) > max_units:
                    break
                size = (len(nodes), m)
                if abs(total / (m * mean) - 1) > tolerance:
                    verdict = "infeasible (total)"
                    continue
                order = sorted(region)
                pos = {x: k for k, x in enumerate(order)}
                current = np.array([pos[int(labels[u])] for u in nodes])
                t0 = time.perf_counter()
                sol = _solve(g, nodes, current, m, lo, hi, node_limit)
                dt = time.perf_counter() - t0
                if isinstance(sol, str):
                    verdict = f"undecided ({dt:.1f} s)"
                    break
                if sol is None:
                    verdict = f"infeasible ({dt:.1f} s)"
                    continue
                new = labels.copy()
                new[nodes] = np.asarray(order)[sol]
                verdict = "found" if _contiguous(g, new, order) else "found (check contiguity)"
                break
            rows.append({"community": community, "grid_id": gid, "value": w[gid],
                         "deviation": w[gid] / mean - 1, "units": size[0], "grids": size[1],
                         "verdict": verdict})
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
