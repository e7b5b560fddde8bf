"""Re-partition against delineating from scratch, on the Bund, in four scenarios.

    python benchmarks/repartition_scenarios.py [--data data/shanghai_bund.gpkg] [--out F.md]

The buildings and streets are real (OpenStreetMap, the bundled extract or
../shared/data/shanghai-bund-osm); households are gridmap's floor-area estimate.
The area is cut into four communities by two straight lines through the middle
of the buildings' extent (synthetic community boundaries: the extract has none).
The plan running is a delineation at 300 households ±10%.  Each scenario
changes the buildings and re-partitions, then delineates the changed district
from scratch with the same settings:

- ``+25% NW``: households +25% in the north-west community, in proportion to
  each building's households;
- ``new estate``: ten towers of 150 households (1,500) on the largest unit
  without households in the community with most grids;
- ``demolished block``: every building of the unit with most buildings removed;
- ``floating halved``: in the west part of the south-west community, 40% of the
  households are taken to be floating and half of them leave (a fifth fewer).

For each: seconds, the share of households that keep their grid (for the
from-scratch plan: the best one-to-one matching of its grids to the old ones),
households moved, grids, out of tolerance (grids out of the band plus
communities out of scale), grids out of the band, the communities whose mean is
beyond the target ± tolerance (with their mean), max deviation, and whether
every grid is one piece.  The same functions build the scenarios of
``tests/test_repartition_scenarios.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import gridmap
from gridmap.io import to_metric

ROOT = Path(__file__).resolve().parents[1]

TARGET, TOLERANCE = 300, 0.1


def quadrants(buildings: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Four communities NW, NE, SW, SE split at the middle of the buildings' extent.

    With official codes, in one sub-district.
    """
    m = to_metric(buildings)
    x0, y0, x1, y1 = m.total_bounds
    xm, ym, pad = (x0 + x1) / 2, (y0 + y1) / 2, 500
    boxes = {"NW": shapely.box(x0 - pad, ym, xm, y1 + pad),
             "NE": shapely.box(xm, ym, x1 + pad, y1 + pad),
             "SW": shapely.box(x0 - pad, y0 - pad, xm, ym),
             "SE": shapely.box(xm, y0 - pad, x1 + pad, ym)}
    # official codes (统计用区划代码) of four communities of one sub-district of
    # Huangpu, made up: every grid code is its community's code and a sequence
    codes = {"NW": "310101002001", "NE": "310101002002", "SW": "310101002003",
             "SE": "310101002004"}
    return gpd.GeoDataFrame({"community_id": list(boxes), "subdistrict_id": "310101002",
                             "code": [codes[k] for k in boxes]},
                            geometry=list(boxes.values()), crs=m.crs).to_crs(buildings.crs)


def running_plan(buildings: gpd.GeoDataFrame, streets: gpd.GeoDataFrame,
                 id_column: str | None = None) -> gridmap.GridPlan:
    return gridmap.delineate(buildings, streets, boundaries=quadrants(buildings),
                             target=TARGET, tolerance=TOLERANCE, id_column=id_column)


def scenarios(plan: gridmap.GridPlan) -> Iterator[tuple[str, gpd.GeoDataFrame]]:
    """(name, current buildings) of each scenario, from the plan running."""
    # the buildings as a planner has them: the plan's ids and estimate flag dropped
    base = plan.buildings.drop(columns=["grid_id", "unit_id", "pop_actual", "estimated"],
                               errors="ignore")
    comm = plan.buildings["grid_id"].map(plan.grids.set_index("grid_id")["community_id"])
    hh = base["households"].to_numpy(dtype=float)

    b = base.copy()
    nw = (comm == "NW").to_numpy()
    b.loc[nw, "households"] = np.round(hh[nw] * 1.25)
    yield "+25% NW", b

    units = to_metric(plan.units)
    # empty land in the community with most grids (the residential west bank; the
    # east bank is mostly towers each a grid of its own)
    most_grids = plan.grids.groupby("community_id").size().idxmax()
    ucomm = units["grid_id"].map(plan.grids.set_index("grid_id")["community_id"])
    empty = units[(units["households"] == 0) & (ucomm == most_grids).to_numpy()]
    land = empty.geometry.iloc[int(np.argmax(empty.area.to_numpy()))].buffer(-15)
    x0, y0, x1, y1 = land.bounds
    spots = [shapely.Point(x, y) for y in np.arange(y0, y1, 35) for x in np.arange(x0, x1, 35)]
    spots = [p for p in spots if land.contains(p.buffer(12))][:10]
    towers = gpd.GeoDataFrame(
        {plan.params.get("id_column") or "id": [f"estate-{i}" for i in range(len(spots))],
         "households": [1500 / len(spots)] * len(spots)},
        geometry=[p.buffer(10, cap_style="square") for p in spots], crs=units.crs,
    ).to_crs(base.crs)
    yield "new estate", gpd.GeoDataFrame(pd.concat([base, towers], ignore_index=True),
                                         crs=base.crs)

    most = plan.buildings.groupby("unit_id").size().idxmax()
    yield "demolished block", base[(plan.buildings["unit_id"] != most).to_numpy()].copy()

    b = base.copy()
    cx = to_metric(base).geometry.centroid.x.to_numpy()
    bx0, _, bx1, _ = to_metric(base).total_bounds
    area = (comm == "SW").to_numpy() & (cx < bx0 + 0.3 * (bx1 - bx0))
    floating = np.round(hh[area] * 0.4)
    b.loc[area, "households"] = hh[area] - np.round(floating / 2)
    yield "floating halved", b


def kept_from_scratch(old: gridmap.GridPlan, new: gridmap.GridPlan) -> tuple[float, float]:
    """Share and number of households not in the grid best matched to their old one.

    The from-scratch plan's grids are matched one to one to the old grids so
    that as many households as possible stay (linear sum assignment); returns
    the share kept and the households moved.
    """
    from scipy.optimize import linear_sum_assignment

    id_col = old.params.get("id_column") or "id"
    o = old.buildings.set_index(id_col)["grid_id"].rename("old")
    n = new.buildings.set_index(id_col)[["grid_id", "households"]]
    both = n.join(o, how="inner")
    table = both.groupby(["old", "grid_id"])["households"].sum().unstack(fill_value=0)
    r, c = linear_sum_assignment(-table.to_numpy())
    kept = float(table.to_numpy()[r, c].sum())
    total = float(both["households"].sum())
    return kept / total, total - kept


def markdown(table: pd.DataFrame) -> str:
    """The table in Markdown (without pandas' optional tabulate)."""
    lines = ["| " + " | ".join(map(str, table.columns)) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT / "data" / "shanghai_bund.gpkg"))
    ap.add_argument("--out", help="also write the table as Markdown here")
    ap.add_argument("--only", nargs="*", help="run only these scenarios (names as above)")
    args = ap.parse_args(argv)
    b = gpd.read_file(args.data, layer="buildings")
    if "kind" in b and "building_part" in set(b["kind"].astype(str)):
        b = b[b["kind"].astype(str) != "building_part"]  # parts lie inside buildings
    s = gpd.read_file(args.data, layer="streets")
    id_col = "id" if "id" in b else "osm_id"
    t = time.perf_counter()
    plan = running_plan(b, s, id_col)
    print(f"plan running: {len(plan.grids)} grids, {plan.metrics['n_out_of_tolerance']} out "
          f"of tolerance ({time.perf_counter() - t:.0f} s)", flush=True)
    rows = []
    for name, now in scenarios(plan):
        if args.only and name not in args.only:
            continue
        t = time.perf_counter()
        r = gridmap.repartition(plan, now)
        tr = time.perf_counter() - t
        ch = r.metrics["changes"]
        t = time.perf_counter()
        fresh = gridmap.delineate(now, plan.streets, boundaries=quadrants(b),
                                  street_column="class", target=TARGET, tolerance=TOLERANCE,
                                  id_column=id_col)
        tf = time.perf_counter() - t
        for how, p, secs, (kept, moved) in (
                ("re-partition", r, tr, (ch["share_households_kept"], ch["households_moved"])),
                ("from scratch", fresh, tf, kept_from_scratch(plan, fresh))):
            rows.append({
                "scenario": name, "how": how, "s": round(secs),
                "households kept": f"{kept:.1%}",
                "households moved": f"{moved:,.0f}",
                # the least any plan with the re-partition's grid counts had to move
                "least moved": f"{ch['least_households_moved']:,.0f}" if p is r else "",
                "grids": len(p.grids), "new": len(ch["grids_new"]) if p is r else "",
                "out of tolerance": p.metrics["n_out_of_tolerance"],
                "grids out": p.metrics["n_grids_out_of_tolerance"],
                # communities whose mean is beyond target ± tolerance (规模适度),
                # with their mean
                "out of scale": ", ".join(
                    f"{c} {p.metrics['scale_by_community'][c]['mean']:.0f}"
                    for c in p.metrics["communities_out_of_scale"]) or "–",
                "max deviation": f"{p.metrics['max_abs_deviation']:.1%}",
                "contiguous": p.metrics["contiguous"],
            })
        print(pd.DataFrame(rows[-2:]).to_string(index=False), flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    if args.out:
        Path(args.out).write_text(markdown(table), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
