"""Hand edits applied to real plans: time, balance and what the edits keep.

Usage::

    python benchmarks/apply_edits.py [NAME ...] [--moves N]

For each data set of ``benchmarks/realdata.py`` (default: the bundled Bund,
Monaco, Hong Kong and Tsinghua), delineate at default effort, then draw ``N``
edits as a planner would (each a unit with buildings moved into a neighbouring
grid of its community, leaving its grid in one piece and housed, no two edits
on the same grid), write them as ``edits.json`` and apply them twice: as they
are, and with ``rebalance=True``.  Printed side by side: the time of each, the
grids out of tolerance in the plan, after the edits and after the re-balance,
whether every building moved by hand is in the grid it was moved to, and,
recomputed from the written ``plan.gpkg``, grids in several parts and the gap
and overlap of the grids.  Plans made from units alone (Providence's census
blocks) cannot be edited by building and are left out.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import networkx as nx
import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent))

from realdata import DATASETS

import gridmap

DEFAULT = ("bundled", "monaco-osm", "hongkong-tst-osm", "beijing-tsinghua-osm")


def draw_moves(plan: gridmap.GridPlan, n: int) -> list[dict]:
    """``n`` moves a planner could make, each between two grids no other touches."""
    label = plan.units["grid_id"].to_numpy()
    info = plan.grids.set_index("grid_id")
    comm = info["community_id"].reindex(label).to_numpy()
    kind = info["kind"].reindex(label).to_numpy()
    housed = plan.units["unit_id"].isin(plan.buildings["unit_id"]).to_numpy()
    used: set = set()
    moves: list[dict] = []
    for u in sorted(plan.graph.nodes):
        a = label[u]
        if a in used or kind[u] != "community" or not housed[u]:
            continue
        rest = np.flatnonzero(label == a)
        rest = rest[rest != u]
        if not len(rest) or not housed[rest].any() or \
                not nx.is_connected(plan.graph.subgraph(rest.tolist())):
            continue
        for v in sorted(plan.graph.neighbors(u)):
            b = label[v]
            if b != a and b not in used and kind[v] == "community" and comm[v] == comm[u]:
                moves.append({"unit_id": int(plan.units["unit_id"].iloc[u]),
                              "from": int(a), "to": int(b)})
                used |= {a, b}
                break
        if len(moves) == n:
            break
    return moves


def pinned_kept(before: gridmap.GridPlan, after: gridmap.GridPlan, moves: list[dict]) -> bool:
    """Every building of a unit moved by hand is in the grid it was moved to."""
    id_col = before.params.get("id_column") or "id"
    now = after.buildings.set_index(id_col)["grid_id"]
    for m in moves:
        ids = before.buildings.loc[before.buildings["unit_id"] == m["unit_id"], id_col]
        if not (now.reindex(ids).to_numpy() == m["to"]).all():
            return False
    return True


def geometry_check(folder: Path) -> tuple[int, float, float]:
    """Grids in several parts, gap and overlap (m²), from the written plan."""
    plan = gridmap.read_plan(folder)
    grids = plan.grids.to_crs(plan.grids.estimate_utm_crs())
    units = plan.units.to_crs(grids.crs)
    parts = int((shapely.get_num_geometries(grids.geometry.values) > 1).sum())
    union = shapely.union_all(grids.geometry.values)
    area = shapely.union_all(units.geometry.values)
    return parts, abs(area.area - union.area), float(grids.area.sum() - union.area)


def run(name: str, n_moves: int, root: Path) -> dict:
    spec = DATASETS[name]()
    t0 = time.perf_counter()
    plan = gridmap.delineate(**spec.kwargs)
    made = time.perf_counter() - t0
    moves = draw_moves(plan, n_moves)
    edits = {"plan": plan.plan_id, "by": spec.by, "moves": moves, "note": "benchmark"}
    path = root / f"{name}-edits.json"
    path.write_text(json.dumps(edits), encoding="utf-8")
    row = {"name": name, "grids": len(plan.grids), "delineate_s": made,
           "moves": len(moves), "out_plan": plan.metrics["n_grids_out_of_tolerance"]}
    for label, rebalance in (("apply", False), ("rebalance", True)):
        t0 = time.perf_counter()
        after = gridmap.apply_edits(plan, path, rebalance=rebalance)
        row[f"{label}_s"] = time.perf_counter() - t0
        row[f"out_{label}"] = after.metrics["n_grids_out_of_tolerance"]
        row[f"kept_{label}"] = pinned_kept(plan, after, moves)
        folder = after.to_file(root / f"{name}-{label}")
        row[f"parts_{label}"], row[f"gap_{label}"], row[f"overlap_{label}"] = \
            geometry_check(folder)
        if rebalance:
            row["rounds"] = after.metrics["edits"]["rebalance_rounds"]
            row["moved_by_rebalance"] = after.metrics["changes"]["buildings_moved"]
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", default=list(DEFAULT))
    p.add_argument("--moves", type=int, default=5)
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.names:
            rows.append(run(name, args.moves, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
    head = ("data set", "grids", "moves", "apply s", "+rebalance s", "out: plan",
            "after edits", "rebalanced", "hand moves kept", "parts", "gap m²", "overlap m²")
    print(" | ".join(head))
    for r in rows:
        print(" | ".join(str(x) for x in (
            r["name"], r["grids"], r["moves"], f"{r['apply_s']:.1f}",
            f"{r['rebalance_s']:.1f}", r["out_plan"], r["out_apply"], r["out_rebalance"],
            f"{r['kept_apply']}/{r['kept_rebalance']}",
            f"{r['parts_apply']}/{r['parts_rebalance']}",
            f"{r['gap_apply']:.1f}/{r['gap_rebalance']:.1f}",
            f"{r['overlap_apply']:.1f}/{r['overlap_rebalance']:.1f}")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
